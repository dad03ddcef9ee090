module github.com/netintel/netintelreceiver

go 1.26.8
