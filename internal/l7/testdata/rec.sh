#!/bin/bash
# rec.sh NAME FILTER -- command...
name=$1; filter=$2; shift 3
tshark -i lo -f "$filter" -w /tmp/rec/$name.pcap -q 2>/tmp/rec/$name.tshark.log &
tp=$!
for i in $(seq 1 50); do grep -q Capturing /tmp/rec/$name.tshark.log && break; sleep 0.1; done
sleep 0.5
bash -c "$*"
sleep 1
kill $tp; wait $tp
tshark -r /tmp/rec/$name.pcap -T fields -E separator=/t -e frame.time_epoch -e ip.src -e ipv6.src -e tcp.srcport -e udp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport -e udp.dstport -e tcp.flags.syn -e tcp.flags.reset -e tcp.flags.fin -e tcp.seq_raw -e tcp.payload -e udp.payload > /tmp/rec/$name.tsv
wc -l /tmp/rec/$name.tsv
