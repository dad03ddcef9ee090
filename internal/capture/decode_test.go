//go:build amd64 || arm64

package capture

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/netintel/netintelreceiver/bpf"
)

func rawOf[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

func comm(s string) (c [16]int8) {
	for i := 0; i < len(s) && i < 15; i++ {
		c[i] = int8(s[i])
	}
	return c
}

func v4(a, b, c, d byte) (x [16]uint8) {
	x[0], x[1], x[2], x[3] = a, b, c, d
	return x
}

func dataRecord(payload []byte, size uint32) []byte {
	h := bpf.NetintelDataHeader{
		Type: kernelEventData, Dir: uint8(DirectionSend), Size: size, TsNs: 1500,
		Cookie: 77,
		Task:   bpf.NetintelTaskId{Tgid: 42, Tid: 43, CgroupId: 9, Comm: comm("curl")},
		Tuple: bpf.NetintelSockTuple{
			Saddr: v4(127, 0, 0, 1), Daddr: v4(127, 0, 0, 40), Sport: 50000, Dport: 8000,
			Family: afInet, Transport: uint8(TransportTCP), Role: uint8(RoleClient),
		},
		Seq: 1001, ClientIsn: 1000, ServerIsn: 5000, PayloadLen: uint32(len(payload)),
	}
	if int(size) > len(payload) {
		h.Flags = dataTruncated
	}
	return append(rawOf(&h), payload...)
}

func TestDecodeData(t *testing.T) {
	d := decoder{bootWall: time.Unix(1000, 0)}
	payload := []byte("GET / HTTP/1.1\r\n")
	ev, err := d.decode(dataRecord(payload, 600))
	if err != nil {
		t.Fatal(err)
	}
	e := ev.Data
	if ev.Conn != nil || e == nil {
		t.Fatalf("want a data event, got %+v", ev)
	}
	want := DataEvent{
		Time:      time.Unix(1000, 1500),
		Process:   Process{PID: 42, TID: 43, Comm: "curl", CgroupID: 9},
		Socket:    Socket{Cookie: 77, Transport: TransportTCP, Local: netip.MustParseAddrPort("127.0.0.1:50000"), Remote: netip.MustParseAddrPort("127.0.0.40:8000"), Role: RoleClient},
		Direction: DirectionSend, Size: 600, Payload: payload, Truncated: true,
		Seq: 1001, ClientISN: 1000, ServerISN: 5000,
	}
	if !e.Time.Equal(want.Time) || e.Process != want.Process || e.Socket != want.Socket || e.Direction != want.Direction ||
		e.Size != want.Size || !bytes.Equal(e.Payload, want.Payload) || e.Truncated != want.Truncated ||
		e.Seq != want.Seq || e.ClientISN != want.ClientISN || e.ServerISN != want.ServerISN {
		t.Errorf("decoded %+v\nwant    %+v", e, want)
	}
}

func TestDecodeCopiesPayload(t *testing.T) {
	d := decoder{}
	raw := dataRecord([]byte("HTTP/1.1 200 OK"), 15)
	ev, err := d.decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		raw[i] = 0 // the ring buffer reader reuses its buffer
	}
	if string(ev.Data.Payload) != "HTTP/1.1 200 OK" {
		t.Errorf("payload aliased the record: %q", ev.Data.Payload)
	}
}

func TestDecodeConn(t *testing.T) {
	mapped := [16]uint8{10: 0xff, 11: 0xff, 12: 127, 13: 0, 14: 0, 15: 2}
	k := bpf.NetintelConnEvent{
		Type: kernelEventConn, Kind: uint8(ConnFailed), Err: 111, TsNs: 10,
		Task:  bpf.NetintelTaskId{Tgid: 7, Comm: comm("app")},
		Tuple: bpf.NetintelSockTuple{Saddr: mapped, Daddr: [16]uint8{15: 1}, Sport: 1, Dport: 80, Family: afInet6, Transport: uint8(TransportTCP), Role: uint8(RoleClient)},
	}
	ev, err := (&decoder{}).decode(rawOf(&k))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Conn
	if c == nil || c.Kind != ConnFailed || c.Reason != FailureRefused || c.Errno != 111 || c.Process.PID != 7 || c.Process.Comm != "app" {
		t.Fatalf("decoded %+v", c)
	}
	if c.Socket.Local != netip.MustParseAddrPort("127.0.0.2:1") {
		t.Errorf("v4-mapped local address not unmapped: %v", c.Socket.Local)
	}
	if c.Socket.Remote != netip.MustParseAddrPort("[::1]:80") {
		t.Errorf("remote %v", c.Socket.Remote)
	}

	k = bpf.NetintelConnEvent{Type: kernelEventConn, Kind: uint8(ConnClosed), DurationNs: 2e9, BytesSent: 10, BytesReceived: 20, Retrans: 3, SrttUs: 250, Tuple: bpf.NetintelSockTuple{Family: afInet}}
	ev, _ = (&decoder{}).decode(rawOf(&k))
	c = ev.Conn
	if c.Duration != 2*time.Second || c.BytesSent != 10 || c.BytesReceived != 20 || c.Retransmits != 3 || c.SRTT != 250*time.Microsecond || c.Reason != FailureNone || c.LocalClosedFirst {
		t.Errorf("closed: %+v", c)
	}

	k.LocalClosedFirst = 1
	if ev, _ = (&decoder{}).decode(rawOf(&k)); !ev.Conn.LocalClosedFirst {
		t.Errorf("closed with local_closed_first=1 decoded as %+v", ev.Conn)
	}
	// Only a close carries it.
	k.Kind = uint8(ConnRTT)
	if ev, _ = (&decoder{}).decode(rawOf(&k)); ev.Conn.LocalClosedFirst {
		t.Errorf("rtt event decoded with LocalClosedFirst")
	}
}

func TestFailureReason(t *testing.T) {
	for errno, want := range map[int32]FailureReason{111: FailureRefused, 110: FailureTimedOut, 113: FailureUnreachable, 101: FailureUnreachable, 104: FailureReset, 1: FailureOther} {
		if got := failureReason(errno); got != want {
			t.Errorf("errno %d: %v, want %v", errno, got, want)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	d := decoder{}
	full := dataRecord([]byte("abcdef"), 6)
	conn := rawOf(&bpf.NetintelConnEvent{Type: kernelEventConn})
	for name, raw := range map[string][]byte{
		"empty":              nil,
		"unknown type":       {9, 0, 0, 0},
		"short conn":         conn[:len(conn)-1],
		"short data header":  full[:dataHeaderSize-1],
		"payload beyond end": full[:len(full)-1],
	} {
		if _, err := d.decode(raw); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// BenchmarkDecodeData measures the per-event cost of the hot path (a 512-byte data event).
func BenchmarkDecodeData(b *testing.B) {
	d := decoder{bootWall: time.Now()}
	raw := dataRecord(bytes.Repeat([]byte("x"), DefaultMaxPayloadBytes), 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeConn(b *testing.B) {
	d := decoder{bootWall: time.Now()}
	raw := rawOf(&bpf.NetintelConnEvent{Type: kernelEventConn, Kind: uint8(ConnClosed), Tuple: bpf.NetintelSockTuple{Family: afInet}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// An HTTP/1 record's two slots may differ in size (a short request, a server's full headers):
// the response is read from its own slot, and a record shorter than its slots is refused.
func TestDecodeHTTP1Slots(t *testing.T) {
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp := bytes.Repeat([]byte("r"), 200)
	h := bpf.NetintelHttp1Header{Type: kernelEventHTTP1, Status: 503, ReqLen: uint16(len(req)), RespLen: uint16(len(resp)),
		Slot: 128, RespSlot: 256, Paired: 1, Tuple: bpf.NetintelSockTuple{Family: afInet, Role: uint8(RoleServer)}}
	raw := append(rawOf(&h), make([]byte, 128+256)...)
	copy(raw[http1HeaderSize:], req)
	copy(raw[http1HeaderSize+128:], resp)
	ev, err := (&decoder{}).decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	x := ev.HTTP1
	if !bytes.Equal(x.Request, req) || !bytes.Equal(x.Response, resp) || x.Status != 503 || !x.Paired {
		t.Errorf("request %q, response %d bytes, status %d, paired %v", x.Request, len(x.Response), x.Status, x.Paired)
	}
	if _, err := (&decoder{}).decode(raw[:len(raw)-1]); err == nil {
		t.Error("a record shorter than its slots was decoded")
	}
}
