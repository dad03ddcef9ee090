package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Recordings are JSON lines: one event per line, {"conn":{...}}, {"data":{...}} or
// {"http1":{...}}, with the ConnEvent/DataEvent/HTTP1Event field names, times in RFC 3339, durations in nanoseconds, addresses as
// "ip:port" and payloads in base64. Files live in testdata/*.events.

type recordedEvent struct {
	Conn  *ConnEvent  `json:"conn,omitempty"`
	Data  *DataEvent  `json:"data,omitempty"`
	HTTP1 *HTTP1Event `json:"http1,omitempty"`
}

// Recorder writes events to a recording. It is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewRecorder returns a Recorder writing JSON lines to w.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{enc: json.NewEncoder(w)}
}

// Record appends one event.
func (r *Recorder) Record(ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enc.Encode(recordedEvent(ev))
}

// ReadRecording decodes every event of a recording.
func ReadRecording(rd io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var re recordedEvent
		if err := json.Unmarshal(sc.Bytes(), &re); err != nil {
			return out, fmt.Errorf("recording line %d: %w", line, err)
		}
		set := 0
		for _, p := range []bool{re.Conn != nil, re.Data != nil, re.HTTP1 != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			return out, fmt.Errorf("recording line %d: exactly one of conn, data and http1 must be set", line)
		}
		out = append(out, Event(re))
	}
	return out, sc.Err()
}

// replaySource replays a recording as fast as the consumer reads it.
type replaySource struct {
	events []Event
	ch     chan Event
	done   chan struct{}
	read   atomic.Uint64

	mu      sync.Mutex
	started bool
	closed  bool
	wg      sync.WaitGroup
}

// NewReplay reads the recording at path (see Recorder for the format). Events() is closed
// after the last event.
func NewReplay(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("net_intel: open recording: %w", err)
	}
	defer f.Close()
	evs, err := ReadRecording(f)
	if err != nil {
		return nil, fmt.Errorf("net_intel: %s: %w", path, err)
	}
	return NewReplayEvents(evs), nil
}

// NewReplayEvents replays events held in memory.
func NewReplayEvents(evs []Event) Source {
	return &replaySource{events: evs, ch: make(chan Event), done: make(chan struct{})}
}

func (r *replaySource) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return nil
	}
	r.started = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(r.ch)
		for _, ev := range r.events {
			select {
			case r.ch <- ev:
				r.read.Add(1)
			case <-r.done:
				return
			}
		}
	}()
	return nil
}

func (r *replaySource) Events() <-chan Event { return r.ch }

func (r *replaySource) Counters() Counters { return Counters{EventsRead: r.read.Load()} }

func (r *replaySource) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	started := r.started
	close(r.done)
	r.mu.Unlock()
	r.wg.Wait()
	if !started {
		close(r.ch)
	}
	return nil
}
