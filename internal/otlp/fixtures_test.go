package otlp

import (
	"net/netip"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/identity"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Services and exchanges built by hand: the l7 and identity stages are tested elsewhere.

var (
	t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

	frontend = identity.Service{Name: "frontend", Local: true, Resource: identity.Resource{
		ServiceName: "frontend", PID: 4242, ExecutableName: "node", ContainerID: "c0ffee", HostName: "node-a"}}
	checkout = identity.Service{Name: "checkout", Local: true, Resource: identity.Resource{
		ServiceName: "checkout", PID: 5151, ExecutableName: "checkout", HostName: "node-a"}}
	payments = identity.Service{Name: "payments.example.com"} // remote peer, named by DNS
	resolver = identity.Service{Name: "127.0.0.53:53"}        // remote peer, named by address

	frontendAddr = netip.MustParseAddrPort("127.0.0.10:41000")
	checkoutAddr = netip.MustParseAddrPort("127.0.0.20:8080")
	paymentsAddr = netip.MustParseAddrPort("127.0.0.30:443")
)

func tcpExchange(side l7.Side, server netip.AddrPort, seq uint32) *l7.Exchange {
	return &l7.Exchange{
		Transport:  capture.TransportTCP,
		Side:       side,
		Client:     l7.Endpoint{Addr: frontendAddr},
		Server:     l7.Endpoint{Addr: server},
		Start:      t0,
		End:        t0.Add(25 * time.Millisecond),
		ClientISN:  0x11111111,
		ServerISN:  0x22222222,
		RequestSeq: 0x11111112 + seq,
	}
}

func httpExchange(side l7.Side, version string, method, path string, status int) *l7.Exchange {
	x := tcpExchange(side, checkoutAddr, 0)
	x.Protocol = l7.ProtocolHTTP1
	if version == "2" {
		x.Protocol = l7.ProtocolHTTP2
		x.StreamID = 3
	}
	x.HTTP = &l7.HTTP{Method: method, Path: path, Query: "token=secret", Version: version,
		Host: "checkout:8080", UserAgent: "curl/8.11.1", Status: status}
	return x
}

func grpcExchange(side l7.Side, status int, name string) *l7.Exchange {
	x := tcpExchange(side, checkoutAddr, 0)
	x.Protocol = l7.ProtocolGRPC
	x.StreamID = 1
	x.HTTP = &l7.HTTP{Method: "POST", Path: "/shop.Checkout/PlaceOrder", Version: "2", Host: "checkout:8080",
		UserAgent: "grpc-go/1.70.0", ContentType: "application/grpc", Status: 200}
	x.GRPC = &l7.GRPC{Service: "shop.Checkout", Method: "PlaceOrder", Status: status, StatusName: name}
	return x
}

func dnsExchange(side l7.Side, rcode int, rname string) *l7.Exchange {
	x := &l7.Exchange{
		Protocol:  l7.ProtocolDNS,
		Transport: capture.TransportUDP,
		Side:      side,
		Client:    l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.10:53000")},
		Server:    l7.Endpoint{Addr: netip.MustParseAddrPort("127.0.0.53:53")},
		Start:     t0,
		End:       t0.Add(2 * time.Millisecond),
		StreamID:  0xbeef,
		DNS:       &l7.DNS{ID: 0xbeef, Name: "payments.example.com", Type: "A", RCode: rcode, RCodeName: rname},
	}
	if rcode == 0 {
		x.DNS.Answers = []netip.Addr{netip.MustParseAddr("127.0.0.30")}
	}
	return x
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
