package l7

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/netintel/netintelreceiver/internal/capture"
)

type wantDNS struct {
	transport capture.Transport
	name      string
	typ       string
	rcode     string
	answers   []string
	cnames    []string
}

// dig ↔ dnsmasq.
var dnsWant = []wantDNS{
	{capture.TransportUDP, "shop.example.test", "A", "NOERROR", []string{"127.0.0.9"}, nil},
	{capture.TransportUDP, "ghost.internal.test", "A", "NXDOMAIN", nil, nil},
	{capture.TransportUDP, "www.internal.test", "A", "NOERROR", []string{"127.0.0.10"}, []string{"db.internal.test"}},
	{capture.TransportUDP, "db.internal.test", "AAAA", "NOERROR", []string{"::10"}, nil},
	{capture.TransportTCP, "shop.example.test", "A", "NOERROR", []string{"127.0.0.9"}, nil},
}

func TestDNSFixture(t *testing.T) {
	conns := loadFixture(t, "dns.tsv")
	for _, r := range []replay{{}, {close: true}, {unknownRole: true}, {split: 3}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			xs, tr := runFixture(t, "dns.tsv", DefaultOptions(), r)
			for _, side := range []Side{SideClient, SideServer} {
				got := bySide(xs, side)
				if len(got) != len(dnsWant) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(dnsWant))
				}
				for i, w := range dnsWant {
					x := got[i]
					d := x.DNS
					var answers []string
					for _, a := range d.Answers {
						answers = append(answers, a.String())
					}
					if x.Protocol != ProtocolDNS || x.Transport != w.transport || d.Name != w.name || d.Type != w.typ || d.RCodeName != w.rcode ||
						!slices.Equal(answers, w.answers) || !slices.Equal(d.CNAMEs, w.cnames) || x.Failure != FailureNone {
						t.Errorf("%v #%d: %v %+v, want %+v", side, i, x.Transport, *d, w)
					}
					if w.transport == capture.TransportUDP && (x.StreamID != uint32(d.ID) || x.ClientISN != 0 || x.RequestSeq != 0) {
						t.Errorf("%v #%d: UDP identity: stream %d isn %d seq %d", side, i, x.StreamID, x.ClientISN, x.RequestSeq)
					}
					if d.Name == "ghost.internal.test" && d.RCode != int(dnsmessage.RCodeNameError) {
						t.Errorf("NXDOMAIN rcode %d", d.RCode)
					}
				}
			}
			var tcp []*Exchange
			for _, x := range xs {
				if x.Transport == capture.TransportTCP {
					tcp = append(tcp, x)
				}
			}
			checkIdentity(t, conns, tcp, func(x *Exchange, at []byte) bool {
				return len(at) > 4 && at[2] == byte(x.DNS.ID>>8) && at[3] == byte(x.DNS.ID)
			})
			if c := tr.Counters(); c.UnmatchedResponses != 0 || c.ParseFailure(ProtocolDNS) != 0 {
				t.Errorf("counters %+v", c)
			}
		})
	}
}

func dnsQuery(id uint16, name string, response bool, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: response, RCode: rcode, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	if response && rcode == dnsmessage.RCodeSuccess {
		b.StartAnswers()
		b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name + "."), Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: [4]byte{127, 0, 0, 7}})
	}
	out, err := b.Finish()
	if err != nil {
		panic(err)
	}
	return out
}

func udpEvent(sock capture.Socket, dir capture.Direction, at time.Time, p []byte) *capture.DataEvent {
	return &capture.DataEvent{Time: at, Socket: sock, Direction: dir, Size: len(p), Payload: p}
}

func TestDNSTimeoutAndMatching(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	// A resolver's unconnected socket: queries to two servers with the same id are told apart
	// by the peer; an unanswered one times out.
	sock := capture.Socket{Cookie: 7, Transport: capture.TransportUDP, Local: netip.MustParseAddrPort("127.0.0.1:5000")}
	s1 := sock
	s1.Remote = netip.MustParseAddrPort("127.0.0.53:53")
	s2 := sock
	s2.Remote = netip.MustParseAddrPort("127.0.0.54:53")
	t0 := time.Unix(1_800_000_000, 0)
	tr.Data(udpEvent(s1, capture.DirectionSend, t0, dnsQuery(42, "a.test", false, 0)))
	tr.Data(udpEvent(s2, capture.DirectionSend, t0, dnsQuery(42, "b.test", false, 0)))
	tr.Data(udpEvent(s2, capture.DirectionRecv, t0.Add(time.Millisecond), dnsQuery(42, "b.test", true, dnsmessage.RCodeSuccess)))
	tr.Data(udpEvent(s2, capture.DirectionRecv, t0.Add(2*time.Millisecond), dnsQuery(43, "c.test", true, dnsmessage.RCodeSuccess)))
	if len(*xs) != 1 || (*xs)[0].DNS.Name != "b.test" || (*xs)[0].Server.Addr != s2.Remote || (*xs)[0].DNS.Answers[0] != netip.MustParseAddr("127.0.0.7") {
		t.Fatalf("want b.test answered by %v: %d exchanges", s2.Remote, len(*xs))
	}
	if (*xs)[0].Duration() != time.Millisecond {
		t.Errorf("latency %v", (*xs)[0].Duration())
	}
	tr.Tick(t0.Add(time.Second))
	if len(*xs) != 1 {
		t.Fatalf("timed out too early")
	}
	tr.Tick(t0.Add(31 * time.Second))
	if len(*xs) != 2 || (*xs)[1].DNS.Name != "a.test" || (*xs)[1].Failure != FailureTimeout || (*xs)[1].DNS.RCode != -1 {
		t.Fatalf("a.test must time out")
	}
	if c := tr.Counters(); c.Timeouts != 1 || c.UnmatchedResponses != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestDNSCompressionLoop(t *testing.T) {
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	sock := capture.Socket{Cookie: 7, Transport: capture.TransportUDP, Local: netip.MustParseAddrPort("127.0.0.1:5000"), Remote: netip.MustParseAddrPort("127.0.0.53:53")}
	t0 := time.Unix(1_800_000_000, 0)
	q := dnsQuery(9, "loop.test", false, 0)
	tr.Data(udpEvent(sock, capture.DirectionSend, t0, q))
	// A response whose answer name points at itself.
	resp := append([]byte(nil), q[:12]...)
	resp[2] |= 0x80
	resp[7] = 1 // one answer
	resp = append(resp, q[12:]...)
	self := len(resp)
	resp = append(resp, 0xc0|byte(self>>8), byte(self), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1)
	tr.Data(udpEvent(sock, capture.DirectionRecv, t0, resp))
	if len(*xs) != 1 || len((*xs)[0].DNS.Answers) != 0 || (*xs)[0].DNS.RCodeName != "NOERROR" {
		t.Fatalf("the looping answer must be dropped, the exchange kept")
	}
	// A question name that loops is a parse failure.
	bad := append([]byte(nil), q[:12]...)
	bad = append(bad, 0xc0, 12, 0, 1, 0, 1)
	tr.Data(udpEvent(sock, capture.DirectionSend, t0, bad))
	if tr.Counters().ParseFailure(ProtocolDNS) != 1 {
		t.Errorf("looping question not counted: %+v", tr.Counters())
	}
}

// dig +tcp against dnsmasq, recorded by the kernel programs (testdata/dig-tcp.events): dig
// writes the 2-byte length and the query as two iovecs of one sendmsg, and the capture copied
// only the first. dnsmasq's reads and both responses were captured. The client's exchange
// comes from its write (start, sequence number) and the response (which echoes the question
// and id); the server's from its reads.
func TestDNSOverTCPQueryNotCaptured(t *testing.T) {
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, readEvents(t, "dig-tcp.events"))
	sides := map[Side]*Exchange{}
	for _, x := range xs {
		sides[x.Side] = x
	}
	if len(xs) != 2 || sides[SideClient] == nil || sides[SideServer] == nil {
		t.Fatalf("%d exchanges (%v), want one per side", len(xs), sides)
	}
	for side, x := range sides {
		if d := x.DNS; d.Name != "svc.test" || d.Type != "A" || d.RCodeName != "NOERROR" || len(d.Answers) != 1 || x.Transport != capture.TransportTCP || x.Failure != FailureNone {
			t.Errorf("%v: %+v failure %v", side, *d, x.Failure)
		}
	}
	c, s := sides[SideClient], sides[SideServer]
	if c.RequestSeq != s.RequestSeq || c.ClientISN != s.ClientISN || c.DNS.ID != s.DNS.ID || c.TraceID() != s.TraceID() {
		t.Errorf("the two halves do not share their identity: client %d/%d id %d, server %d/%d id %d", c.RequestSeq, c.ClientISN, c.DNS.ID, s.RequestSeq, s.ClientISN, s.DNS.ID)
	}
	if n := tr.Counters().ParseFailure(ProtocolDNS); n != 0 {
		t.Errorf("%d DNS parse failures", n)
	}
}
