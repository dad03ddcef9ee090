package capture

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleEvents() []Event {
	sock := Socket{Cookie: 5, Transport: TransportTCP, Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort("127.0.0.40:8000"), Role: RoleClient}
	t0 := time.Date(2026, 11, 29, 5, 0, 0, 123, time.UTC)
	return []Event{
		{Conn: &ConnEvent{Kind: ConnOpened, Time: t0, Process: Process{PID: 1, TID: 2, Comm: "curl", CgroupID: 3}, Socket: sock}},
		{Data: &DataEvent{Time: t0.Add(time.Millisecond), Process: Process{PID: 1, Comm: "curl"}, Socket: sock, Direction: DirectionSend, Size: 18, Payload: []byte("GET / HTTP/1.1\r\n\r\n"), Seq: 11, ClientISN: 10, ServerISN: 99}},
		{Conn: &ConnEvent{Kind: ConnClosed, Time: t0.Add(time.Second), Socket: sock, Duration: time.Second, BytesSent: 18, SRTT: 40 * time.Microsecond}},
		{Conn: &ConnEvent{Kind: ConnFailed, Time: t0, Socket: sock, Reason: FailureRefused, Errno: 111}},
	}
}

func TestRecordingRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	want := sampleEvents()
	for _, ev := range want {
		if err := rec.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(want) {
		t.Fatalf("%d lines for %d events", n, len(want))
	}
	got, err := ReadRecording(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events back, want %d", len(got), len(want))
	}
	d := got[1].Data
	if d == nil || string(d.Payload) != "GET / HTTP/1.1\r\n\r\n" || d.Seq != 11 || d.ServerISN != 99 || d.Socket != want[1].Data.Socket || !d.Time.Equal(want[1].Data.Time) {
		t.Errorf("data event %+v", d)
	}
	c := got[2].Conn
	if c == nil || c.Duration != time.Second || c.SRTT != 40*time.Microsecond || c.Kind != ConnClosed {
		t.Errorf("closed event %+v", c)
	}
	if got[3].Conn.Reason != FailureRefused || got[3].Conn.Errno != 111 {
		t.Errorf("failed event %+v", got[3].Conn)
	}
}

func TestReadRecordingRejectsBadLines(t *testing.T) {
	for name, in := range map[string]string{
		"not json": "{oops\n",
		"neither":  "{}\n",
		"both":     `{"conn":{"Kind":1},"data":{"Size":1}}` + "\n",
	} {
		if _, err := ReadRecording(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReplayDeliversInOrderThenCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.events")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(f)
	for _, ev := range sampleEvents() {
		_ = rec.Record(ev)
	}
	f.Close()

	src, err := NewReplay(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for ev := range src.Events() {
		if ev.Conn != nil {
			kinds = append(kinds, ev.Conn.Kind.String())
		} else {
			kinds = append(kinds, "data")
		}
	}
	if got := strings.Join(kinds, ","); got != "opened,data,closed,failed" {
		t.Errorf("replayed %s", got)
	}
	if c := src.Counters(); c.EventsRead != 4 {
		t.Errorf("counters %+v", c)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReplayCloseWithoutStartOrMidway(t *testing.T) {
	src := NewReplayEvents(sampleEvents())
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-src.Events(); ok {
		t.Fatal("channel open after Close without Start")
	}

	src = NewReplayEvents(sampleEvents())
	_ = src.Start(context.Background())
	<-src.Events() // consume one, leave the rest
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	for range src.Events() {
	}
}

func TestNewReplayMissingFile(t *testing.T) {
	if _, err := NewReplay(filepath.Join(t.TempDir(), "none.events")); err == nil || !strings.Contains(err.Error(), "net_intel") {
		t.Errorf("err %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Options){
		"payload too big": func(o *Options) { o.MaxPayloadBytes = MaxPayloadBytesLimit + 1 },
		"ring not pow2":   func(o *Options) { o.RingBufferSize = 5000 },
		"ring too small":  func(o *Options) { o.RingBufferSize = 1024 },
		"too many ports":  func(o *Options) { o.DNSPorts = make([]uint16, MaxPortsPerProtocol+1) },
		"negative queue":  func(o *Options) { o.QueueSize = -1 },
	}
	for name, mutate := range bad {
		o := DefaultOptions()
		mutate(&o)
		if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), "net_intel: ") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	d := Options{}.withDefaults()
	if d.MaxPayloadBytes != DefaultMaxPayloadBytes || d.RingBufferSize != DefaultRingBufferSize || d.QueueSize != DefaultQueueSize {
		t.Errorf("defaults %+v", d)
	}
}

// TestLoopbackRecording checks the committed live recording (made with
// `go test ./internal/capture -run 'TestKernel(HTTPExchange|Refused|Reset|DNS)' -args -record testdata/loopback.events`)
// still says what the later stages rely on.
func TestLoopbackRecording(t *testing.T) {
	src, err := NewReplay(filepath.Join("testdata", "loopback.events"))
	if err != nil {
		t.Fatal(err)
	}
	_ = src.Start(context.Background())
	defer src.Close()
	seqs := map[string][]uint32{} // first payload line -> seqs seen
	kinds := map[ConnKind]int{}
	udp := 0
	for ev := range src.Events() {
		if ev.Conn != nil {
			kinds[ev.Conn.Kind]++
			continue
		}
		d := ev.Data
		if d.Socket.Transport == TransportUDP {
			udp++
			continue
		}
		line, _, _ := strings.Cut(string(d.Payload), "\r\n")
		seqs[line] = append(seqs[line], d.Seq)
	}
	for _, k := range []ConnKind{ConnOpened, ConnClosed, ConnFailed, ConnResetSent, ConnResetReceived} {
		if kinds[k] == 0 {
			t.Errorf("no %v event in the recording", k)
		}
	}
	if udp != 4 {
		t.Errorf("%d DNS datagrams, want 4", udp)
	}
	for _, line := range []string{"GET /hello?x=1 HTTP/1.1", "HTTP/1.1 200 OK"} {
		s := seqs[line]
		if len(s) < 2 || s[0] != s[1] {
			t.Errorf("%q: seqs %v, want the same seq on both ends", line, s)
		}
	}
}
