//go:build linux && (amd64 || arm64)

package capture

import (
	"bytes"
	"net"
	"testing"
)

// TestKernelRingbufBytes asserts that the ring-buffer bytes counter grows by at least the
// space of the records our own traffic produced, in whole 8-byte units.
func TestKernelRingbufBytes(t *testing.T) {
	src, c := startKernel(t, DefaultOptions())
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 55)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 56)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	serverAddr, clientAddr := addrPort(server.LocalAddr()), addrPort(client.LocalAddr())

	before := src.Counters().RingbufBytes
	if before%8 != 0 {
		t.Fatalf("RingbufBytes %d before traffic is not a multiple of 8", before)
	}
	const n = 3
	queries := make([][]byte, n)
	for i := range queries {
		queries[i] = dnsQuery(t, uint16(0x7200+i), "ringbuf-bytes.netintel.test.")
		if _, err := client.WriteToUDPAddrPort(queries[i], serverAddr); err != nil {
			t.Fatal(err)
		}
	}
	var want uint64
	for _, q := range queries {
		c.waitData(t, "query", func(e *DataEvent) bool {
			return e.Socket.Local == clientAddr && e.Direction == DirectionSend && bytes.Equal(e.Payload, q)
		})
		// The data record is its header plus the payload; the kernel adds an 8-byte record
		// header and aligns to 8.
		want += uint64(dataHeaderSize+len(q)+8+7) &^ 7
	}
	after := src.Counters().RingbufBytes
	if after%8 != 0 {
		t.Errorf("RingbufBytes %d is not a multiple of 8", after)
	}
	if after-before < want {
		t.Errorf("RingbufBytes grew by %d over %d datagrams, want at least %d", after-before, n, want)
	}
	// The counter survives Close (read once more as the maps go).
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if final := src.Counters().RingbufBytes; final < after {
		t.Errorf("RingbufBytes after Close %d < %d before", final, after)
	}
}
