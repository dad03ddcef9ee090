// Package kmatrix judges the kernel matrix (make test-kernels): it reads what
// scripts/kmatrix/scenario.sh printed on one kernel (the host's, or a QEMU guest's serial
// port), decides what passed, and renders the per-kernel report a person reads.
package kmatrix

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Markers scenario.sh prints around each section and at the end of the run; /init adds the
// exit line once the scenario returned.
const (
	markBegin = "@@kmatrix begin "
	markEnd   = "@@kmatrix end "
	markDone  = "@@kmatrix done"
	markExit  = "@@kmatrix exit "
)

// Section is the output of one step of the scenario.
type Section struct {
	Name  string
	Lines []string
	// Ended is false when the run stopped inside the section (a hung or panicked kernel, a
	// VM timeout); RC is then meaningless.
	Ended bool
	RC    int
}

// Transcript is one kernel's run as scenario.sh printed it.
type Transcript struct {
	Sections map[string]*Section
	// Order is the sections in the order they began.
	Order []string
	// Done is true when the scenario reached its end.
	Done bool
	// Exited is true when /init saw the scenario return, with its status in ExitRC (124:
	// the guest's own timeout stopped it).
	Exited bool
	ExitRC int
}

// Section returns the named section, or an empty, unended one when the run never began it.
func (t *Transcript) Section(name string) *Section {
	if s, ok := t.Sections[name]; ok {
		return s
	}
	return &Section{Name: name}
}

// Began reports whether the run reached the named section.
func (t *Transcript) Began(name string) bool {
	_, ok := t.Sections[name]
	return ok
}

// LastBegun is the last section the run began, to say where a cut-short run stopped.
func (t *Transcript) LastBegun() string {
	if len(t.Order) == 0 {
		return ""
	}
	return t.Order[len(t.Order)-1]
}

// maxLine bounds one line of the transcript: OTLP JSON documents come one per line.
const maxLine = 16 << 20

// ParseTranscript reads a transcript. Lines outside sections (stray stderr) are dropped;
// carriage returns of the serial line are removed. A run cut short is not an error: its last
// section stays unended.
func ParseTranscript(r io.Reader) (*Transcript, error) {
	t := &Transcript{Sections: map[string]*Section{}}
	var cur *Section
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// A marker may follow output that lacked its final newline: find it anywhere.
		if i := strings.Index(line, "@@kmatrix "); i >= 0 {
			if before := line[:i]; before != "" && cur != nil {
				cur.Lines = append(cur.Lines, before)
			}
			marker := line[i:]
			switch {
			case strings.HasPrefix(marker, markBegin):
				name := strings.TrimSpace(strings.TrimPrefix(marker, markBegin))
				cur = &Section{Name: name}
				if _, dup := t.Sections[name]; !dup {
					t.Order = append(t.Order, name)
				}
				t.Sections[name] = cur
			case strings.HasPrefix(marker, markEnd):
				name, rc, err := parseEnd(strings.TrimPrefix(marker, markEnd))
				if err != nil {
					return nil, err
				}
				if cur != nil && cur.Name == name {
					cur.Ended, cur.RC = true, rc
				}
				cur = nil
			case marker == markDone:
				t.Done = true
				cur = nil
			case strings.HasPrefix(marker, markExit):
				rc, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(marker, markExit)), "rc="))
				if err != nil {
					return nil, fmt.Errorf("malformed exit marker %q: %w", marker, err)
				}
				t.Exited, t.ExitRC = true, rc
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.Lines = append(cur.Lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read transcript: %w", err)
	}
	return t, nil
}

// parseEnd splits "NAME rc=N".
func parseEnd(s string) (name string, rc int, err error) {
	name, rcField, ok := strings.Cut(strings.TrimSpace(s), " rc=")
	if !ok {
		return "", 0, fmt.Errorf("malformed end marker %q: want \"%sNAME rc=N\"", s, markEnd)
	}
	rc, err = strconv.Atoi(strings.TrimSpace(rcField))
	if err != nil {
		return "", 0, fmt.Errorf("malformed end marker %q: %w", s, err)
	}
	return name, rc, nil
}

// Field returns the value after "key " on the section's first line starting with it.
func (s *Section) Field(key string) string {
	for _, l := range s.Lines {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Text is the section's lines joined.
func (s *Section) Text() string { return strings.Join(s.Lines, "\n") }
