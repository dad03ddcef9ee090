package l7

import (
	"net/netip"
	"testing"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// A TCP socket l7 gives up on is handed to the stop function once, with its cookie; a socket it
// follows never is.
func TestGiveUpStopsTheSocketInTheKernel(t *testing.T) {
	var stopped []uint64
	tr := NewTracker(DefaultOptions(), func(*Exchange) {})
	tr.SetStop(func(s capture.Socket) { stopped = append(stopped, s.Cookie) })
	sock := func(cookie uint64, port uint16) capture.Socket {
		return capture.Socket{Cookie: cookie, Transport: capture.TransportTCP, Role: capture.RoleClient,
			Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)}
	}
	at := time.Unix(1700000000, 0)
	feed := func(s capture.Socket, p []byte, n int) {
		for i := 0; i < n; i++ {
			dir := capture.DirectionSend
			if i%2 == 1 {
				dir = capture.DirectionRecv
			}
			tr.Data(&capture.DataEvent{Time: at, Socket: s, Direction: dir, Size: len(p), Payload: p})
			at = at.Add(time.Millisecond)
		}
	}
	junk := sock(7, 9000)
	feed(junk, []byte("\x00\x01\x02binary-protocol-frame-bytes"), 2*maxDetectAttempts)
	if len(stopped) != 1 || stopped[0] != 7 {
		t.Fatalf("unclassified socket: stop calls %v, want one for cookie 7", stopped)
	}

	// The healthy twin: an HTTP/1 connection l7 follows is never stopped.
	stopped = nil
	web := sock(8, 8080)
	feed(web, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1)
	tr.Data(&capture.DataEvent{Time: at, Socket: web, Direction: capture.DirectionRecv, Size: 38, Payload: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")})
	if len(stopped) != 0 {
		t.Fatalf("followed HTTP/1 socket stopped: %v", stopped)
	}
}
