package l7

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// TestKernelRecording runs events the real kernel programs reported (a copy of the capture
// package's loopback recording: an HTTP exchange on each of two connections, a refused
// connect, a reset and a DNS query over UDP) through the tracker.
func TestKernelRecording(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "kernel-loopback.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := capture.ReadRecording(f)
	if err != nil {
		t.Fatal(err)
	}
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, evs)
	var http, dns int
	seqs := map[uint32]int{}
	for _, x := range xs {
		switch x.Protocol {
		case ProtocolHTTP1:
			http++
			seqs[x.RequestSeq]++
			if h := x.HTTP; h.Method != "GET" || h.Path != "/hello" || h.Query != "x=1" || h.Status != 200 || x.ClientISN == 0 || x.ServerISN == 0 || x.Failure != FailureNone {
				t.Errorf("%v: %+v failure %v", x.Side, *h, x.Failure)
			}
		case ProtocolDNS:
			dns++
			if d := x.DNS; d.Name != "api.netintel.test" || d.RCodeName != "NOERROR" || len(d.Answers) != 1 || d.Answers[0] != netip.MustParseAddr("127.0.0.80") {
				t.Errorf("%v: %+v", x.Side, *d)
			}
		default:
			t.Errorf("unexpected %v exchange", x.Protocol)
		}
	}
	if http != 4 || dns != 2 {
		t.Errorf("%d HTTP and %d DNS exchanges, want 4 and 2 (each seen on both sockets)", http, dns)
	}
	for seq, n := range seqs {
		if n != 2 {
			t.Errorf("request seq %d seen on %d sockets, want the client's and the server's", seq, n)
		}
	}
	if n := len(bySide(xs, SideClient)); n != 3 {
		t.Errorf("%d client-side exchanges, want 3", n)
	}
}
