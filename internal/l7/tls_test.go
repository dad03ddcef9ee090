package l7

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

func TestTLSFixture(t *testing.T) {
	conns := loadFixture(t, "tls.tsv")
	want := []struct {
		sni, version string
	}{{"shop.example.test", "1.3"}, {"api.example.test", "1.2"}}
	for _, r := range []replay{{}, {close: true}, {unknownRole: true}, {maxPayload: 512}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			xs, tr := runFixture(t, "tls.tsv", DefaultOptions(), r)
			for _, side := range []Side{SideClient, SideServer} {
				got := bySide(xs, side)
				if len(got) != len(want) {
					t.Fatalf("%v side: %d exchanges, want %d", side, len(got), len(want))
				}
				for i, w := range want {
					x := got[i]
					if x.Protocol != ProtocolTLS || x.TLS.SNI != w.sni || x.TLS.Version != w.version || !slices.Equal(x.TLS.ALPN, []string{"http/1.1"}) ||
						x.TLS.Handshake <= 0 || x.TLS.Handshake != x.Duration() || x.Failure != FailureNone {
						t.Errorf("%v #%d: %+v failure %v, want %+v", side, i, *x.TLS, x.Failure, w)
					}
				}
			}
			checkIdentity(t, conns, xs, func(_ *Exchange, at []byte) bool {
				return len(at) > 5 && at[0] == tlsRecordHandshake && at[5] == tlsClientHello
			})
			if c := tr.Counters(); c.ParseFailure(ProtocolTLS) != 0 || c.ParseFailure(ProtocolHTTP1) != 0 {
				t.Errorf("encrypted bytes were parsed: %+v", c)
			}
		})
	}
}

func TestTLSHelloCutAndRefused(t *testing.T) {
	conns := loadFixture(t, "tls.tsv")
	hello := conns[0].segs[0].payload
	// Cut before the extensions: the exchange still comes, without SNI.
	h, ok := parseTLSHello(hello[:60])
	if !ok || !h.client || h.sni != "" || !h.partial {
		t.Errorf("cut hello: %+v ok=%v", h, ok)
	}
	h, ok = parseTLSHello(hello)
	if !ok || h.sni != "shop.example.test" || h.version != 0x0304 || h.partial {
		t.Errorf("full hello: %+v", h)
	}
	// ClientHello then reset: a failure exchange carrying the SNI.
	xs, emit := collect()
	tr := NewTracker(DefaultOptions(), emit)
	fc := conns[0]
	evs := fc.events(0, replay{clientOnly: true})
	tr.Data(evs[0].Data)
	tr.Conn(&capture.ConnEvent{Kind: capture.ConnResetReceived, Time: evs[0].Data.Time.Add(time.Millisecond), Socket: evs[0].Data.Socket})
	if len(*xs) != 1 || (*xs)[0].Failure != FailureReset || (*xs)[0].TLS.SNI != "shop.example.test" {
		t.Fatalf("want one reset handshake")
	}
}
