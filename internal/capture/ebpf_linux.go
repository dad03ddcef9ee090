//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

// ebpfSource is the live kernel capture.
type ebpfSource struct {
	opts   Options
	logger *zap.Logger

	mu       sync.Mutex
	started  bool
	closed   bool
	stopping atomic.Bool // Stop was called: the reader ends at the flush of the ring

	k      *loaded // maps, programs and links; nil before Start and after Close
	reader *ringbuf.Reader
	events chan Event
	wg     sync.WaitGroup
	dec    decoder

	programIDs   []ebpf.ProgramID
	capabilities []CapabilityState
	judging      Judging
	attach       AttachMode
	minLimit     time.Duration // smallest route limit in the kernel (0: none)
	rules        int           // route rules in the kernel
	ruleFilter   [4]uint64     // their bits in settings.rule_filter
	final        Counters      // kernel counters at Close, once the maps are gone

	eventsRead   atomic.Uint64
	readErrors   atomic.Uint64
	queueDropped atomic.Uint64
	exitedFDs    atomic.Uint64
	seedFull     atomic.Uint64
	stopSweep    chan struct{} // closed by Close: ends sweepLoop
}

// NewEBPF returns the kernel capture source. Nothing touches the kernel before Start.
func NewEBPF(opts Options, logger *zap.Logger) (Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	opts = opts.withDefaults()
	return &ebpfSource{opts: opts, logger: logger, events: make(chan Event, opts.QueueSize), stopSweep: make(chan struct{})}, nil
}

// Start checks the machine, loads and attaches the programs and starts reading.
func (s *ebpfSource) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("net_intel: capture source already closed")
	}
	if s.started {
		return nil
	}
	if err := Check(); err != nil {
		return err
	}
	if err := s.load(); err != nil {
		s.release()
		return err
	}
	s.started = true
	s.wg.Add(2)
	go s.read()
	go s.sweepLoop()
	return nil
}

// sweepLoop removes, every ExitSweepInterval, the fd table entries of processes that exited
// without closing their sockets (sweepExited).
func (s *ebpfSource) sweepLoop() {
	defer s.wg.Done()
	if ok, err := procShowsKernelPIDs(s.opts.ProcRoot); !ok {
		s.logger.Warn("net_intel: "+s.opts.ProcRoot+" is not the node's PID namespace (run the collector with hostPID): fd table entries of processes that exit with sockets open are not removed, and the table may fill (fd_table_full)",
			zap.String("proc_root", s.opts.ProcRoot), zap.Error(err))
		return
	}
	t := time.NewTicker(s.opts.ExitSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			s.sweepExited()
		}
	}
}

// sweepExited runs one sweep; the maps are held open meanwhile.
func (s *ebpfSource) sweepExited() exitedSweep {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.k == nil {
		return exitedSweep{}
	}
	m := s.k.maps.Maps
	sw, err := sweepExited(s.opts.ProcRoot, m[bpf.NetintelMapFds], m[bpf.NetintelMapFdOwners], m[bpf.NetintelMapFdCache], fdCacheSlots(s.opts.MaxSockets)-1)
	s.exitedFDs.Add(uint64(sw.Removed))
	if err != nil {
		s.logger.Warn("net_intel: sweep of exited processes' sockets from the fd table stopped early", zap.Int("removed", sw.Removed), zap.Error(err))
	}
	return sw
}

func (s *ebpfSource) load() error {
	spec, err := bpf.LoadNetintel()
	if err != nil {
		return fmt.Errorf("net_intel: parse embedded eBPF object: %w", err)
	}
	if err := s.configure(spec); err != nil {
		return err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it. Raising it
	// needs CAP_SYS_RESOURCE, and its probe needs CAP_BPF: when it fails, carry on and let the
	// kernel say what it refuses (creating the maps below names the capability).
	if err := rlimit.RemoveMemlock(); err != nil {
		s.logger.Debug("RLIMIT_MEMLOCK not raised; kernels before 5.11 may refuse the eBPF maps (ulimit -l unlimited, or CAP_SYS_RESOURCE)", zap.Error(err))
	}
	spec.Maps[bpf.NetintelMapEvents].MaxEntries = uint32(s.opts.RingBufferSize)
	spec.Maps[bpf.NetintelMapFds].MaxEntries = uint32(s.opts.MaxSockets)
	spec.Maps[bpf.NetintelMapSocks].MaxEntries = uint32(s.opts.MaxSockets)
	spec.Maps[bpf.NetintelMapSockSlots].MaxEntries = uint32(s.opts.MaxSockets)
	spec.Maps[bpf.NetintelMapFreeSlots].MaxEntries = uint32(s.opts.MaxSockets)
	spec.Maps[bpf.NetintelMapFdCache].MaxEntries = fdCacheSlots(s.opts.MaxSockets)
	// A process in fds has at least one entry: as many owners as sockets, at most.
	spec.Maps[bpf.NetintelMapFdOwners].MaxEntries = uint32(s.opts.MaxSockets)
	if cpus, err := ebpf.PossibleCPU(); err == nil {
		aggs := spec.Maps[bpf.NetintelMapAggregates]
		aggs.MaxEntries = aggregateEntries(int(aggs.ValueSize), cpus)
	}
	mode := s.opts.Attach
	if mode == AttachAuto {
		mode = AttachTracepoint
	}
	k, err := loadPrograms(spec, loadOptions{attach: true, mode: mode})
	var refused *attachRefused
	if err != nil && s.opts.Attach == AttachAuto && errors.As(err, &refused) {
		// Classic tracepoints attach with perf_event_open(), which perf_event_paranoid above 2
		// refuses without CAP_SYS_ADMIN (Debian's and Ubuntu's default); raw tracepoints need
		// only CAP_BPF and CAP_PERFMON.
		s.logger.Info("net_intel: classic tracepoints refused, attaching raw tracepoints instead",
			zap.String("program", refused.program), zap.String("perf_event_paranoid", perfEventParanoid()), zap.Error(err))
		k, err = loadPrograms(spec, loadOptions{attach: true, mode: AttachRaw})
	}
	if err != nil {
		var req *requiredProgramError
		var ve *ebpf.VerifierError
		if errors.As(err, &req) && errors.As(err, &ve) {
			s.logger.Error("eBPF verifier rejected a required program", zap.String("program", req.program), zap.String("log", fmt.Sprintf("%+v", ve)))
		}
		return err
	}
	s.k = k
	s.capabilities = k.capabilities
	s.attach = k.mode
	s.judging = s.opts.Judging
	if err := s.writeSettingsLocked(); err != nil {
		return err
	}
	for _, prog := range k.programs {
		if info, err := prog.Info(); err == nil {
			if id, ok := info.ID(); ok {
				s.programIDs = append(s.programIDs, id)
			}
		}
	}
	s.reader, err = ringbuf.NewReader(k.maps.Maps[bpf.NetintelMapEvents])
	if err != nil {
		return fmt.Errorf("net_intel: open ring buffer: %w", err)
	}
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return fmt.Errorf("net_intel: read monotonic clock: %w", err)
	}
	s.dec.bootWall = time.Now().Add(-time.Duration(mono.Nano()))
	// After the programs attached, so a socket opened meanwhile is the kernel's entry, not lost.
	seeded, err := seedFromProc(s.opts.ProcRoot, k.maps.Maps[bpf.NetintelMapFds], k.maps.Maps[bpf.NetintelMapFdOwners], s.opts.ExcludePID)
	if err != nil {
		return err
	}
	s.logger.Info("sockets opened before the capture", zap.Int("found", seeded.Sockets), zap.Int("seeded", seeded.Seeded), zap.Int("already_tracked", seeded.Existing))
	if seeded.Full > 0 {
		s.logger.Warn("net_intel: the kernel fd table is full: sockets opened before the capture are not followed (raise capture.max_sockets)",
			zap.Int("not_followed", seeded.Full), zap.Int("max_sockets", s.opts.MaxSockets))
	}
	s.seedFull.Store(uint64(seeded.Full))
	s.logger.Info("kernel capture attached", zap.Int("programs", len(k.links)), zap.Int("ring_buffer_bytes", s.opts.RingBufferSize))
	level := s.logger.Info
	if len(Degraded(k.capabilities)) > 0 {
		level = s.logger.Warn
	}
	level("net_intel kernel capabilities", zap.String("kernel", kernelRelease()), zap.String("attach", k.mode.String()), zap.String("capabilities", DescribeCapabilities(k.capabilities)))
	return nil
}

// configure writes Options into the programs' read-only configuration.
func (s *ebpfSource) configure(spec *ebpf.CollectionSpec) error {
	o := s.opts
	ports := func(p []uint16) [MaxPortsPerProtocol]uint16 {
		var a [MaxPortsPerProtocol]uint16
		copy(a[:], p)
		return a
	}
	vars := []struct {
		name  string
		value any
	}{
		{"cfg_exclude_tgid", o.ExcludePID},
		{"cfg_max_payload", uint32(o.MaxPayloadBytes)},
		{"cfg_ipv4", b2u8(o.IPv4)}, {"cfg_ipv6", b2u8(o.IPv6)},
		{"cfg_tcp", b2u8(o.TCP)}, {"cfg_udp", b2u8(o.UDP)},
		{"cfg_http", b2u8(o.HTTP)}, {"cfg_https", b2u8(o.HTTPS)},
		{"cfg_grpc", b2u8(o.GRPC)}, {"cfg_dns", b2u8(o.DNS)},
		{"cfg_http_ports", ports(o.HTTPPorts)},
		{"cfg_https_ports", ports(o.HTTPSPorts)},
		{"cfg_dns_ports", ports(o.DNSPorts)},
		{"cfg_wakeup_bytes", uint64(o.RingBufferSize / wakeupFraction)},
		{"cfg_fd_cache_mask", fdCacheSlots(o.MaxSockets) - 1},
	}
	for _, v := range vars {
		vs, ok := spec.Variables[v.name]
		if !ok {
			return fmt.Errorf("net_intel: eBPF object lacks variable %s; regenerate it (make generate)", v.name)
		}
		if err := vs.Set(v.value); err != nil {
			return fmt.Errorf("net_intel: set %s: %w", v.name, err)
		}
	}
	return nil
}

// fdCacheSlots is the size of the fd table's hot copy (fd_cache): the power of two at or above
// the fd table's, so that each followed fd has about a slot of its own.
func fdCacheSlots(maxSockets int) uint32 {
	n := uint32(1)
	for n < uint32(maxSockets) && n < 1<<20 {
		n <<= 1
	}
	return n
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Batching of the ring buffer: the kernel skips the reader's wakeup until 1/wakeupFraction of
// the ring is filled, and the reader otherwise looks every pollInterval. On a busy host that
// turns one wakeup (and one goroutine handoff) per read/write into one per batch; events are
// at most pollInterval late, which nothing downstream measures (timestamps are the kernel's).
const (
	wakeupFraction = 16
	pollInterval   = 100 * time.Millisecond
)

// read moves records from the ring buffer to the queue. It never waits on the consumer: a
// full queue drops the event and counts it, so the kernel side is never held back.
func (s *ebpfSource) read() {
	defer s.wg.Done()
	defer close(s.events)
	var rec ringbuf.Record
	// The kernel wakes us only when a batch is waiting (cfg_wakeup_bytes); the deadline picks
	// up what trickles in below it. It is renewed once per poll, not per record: records
	// already in the ring are read without waiting, whatever the deadline.
	s.reader.SetDeadline(time.Now().Add(pollInterval))
	for {
		if err := s.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			if errors.Is(err, ringbuf.ErrFlushed) && s.stopping.Load() {
				return // Stop: every record left in the ring was delivered
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.reader.SetDeadline(time.Now().Add(pollInterval))
				continue
			}
			s.readErrors.Add(1)
			continue
		}
		ev, err := s.dec.decode(rec.RawSample)
		if err != nil {
			s.readErrors.Add(1)
			continue
		}
		s.eventsRead.Add(1)
		select {
		case s.events <- ev:
		default:
			s.queueDropped.Add(1)
		}
	}
}

func (s *ebpfSource) Events() <-chan Event { return s.events }

// Stop ends the capture but keeps what it counted: the programs are detached, the records
// still in the ring buffer are delivered, then Events is closed; the maps stay readable
// (DrainHTTP1, Counters) until Close, so that a consumer's last flush holds everything the
// kernel saw. Safe to call more than once, and before Close only.
func (s *ebpfSource) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started || s.stopping.Load() {
		return
	}
	for _, l := range s.k.links {
		_ = l.Close()
	}
	s.k.links = nil
	s.stopping.Store(true)
	if err := s.reader.Flush(); err != nil {
		_ = s.reader.Close() // the reader then ends at once
	}
}

func (s *ebpfSource) Counters() Counters {
	s.mu.Lock()
	c := s.final
	if s.k != nil {
		c = s.kernelCounters()
	}
	s.mu.Unlock()
	c.fillSummary()
	c.ReadErrors = s.readErrors.Load()
	c.QueueDropped = s.queueDropped.Load()
	c.EventsRead = s.eventsRead.Load()
	c.ExitedFDs = s.exitedFDs.Load()
	c.SeedFDTableFull = s.seedFull.Load()
	return c
}

// kernelCounters sums the per-CPU counters; s.mu is held.
func (s *ebpfSource) kernelCounters() Counters {
	m := s.k.maps.Maps[bpf.NetintelMapCounters]
	var c Counters
	for i := range c.Kernel {
		var perCPU []uint64
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			continue
		}
		for _, v := range perCPU {
			c.Kernel[i] += v
		}
	}
	for _, p := range s.k.programs {
		// Counted by the kernel whether or not kernel.bpf_stats_enabled is set.
		if st, err := p.Stats(); err == nil {
			c.ProgramRunsMissed += st.RecursionMisses
		}
	}
	c.fillSummary()
	return c
}

// Close detaches every link, stops the reader, closes maps and programs and then Events().
func (s *ebpfSource) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	close(s.stopSweep)
	err := s.release()
	s.mu.Unlock()
	s.wg.Wait()
	if !started {
		close(s.events)
	}
	return err
}

// release frees kernel objects in dependency order; s.mu is held. The reader goroutine exits
// once the ring buffer reader is closed.
func (s *ebpfSource) release() error {
	var errs []error
	if s.k != nil {
		// Links first: no program runs once they are gone.
		for _, l := range s.k.links {
			if err := l.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.k.links = nil
	}
	if s.reader != nil {
		if err := s.reader.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.k != nil {
		s.final = s.kernelCounters()
		if err := s.k.close(); err != nil {
			errs = append(errs, err)
		}
		s.k = nil
	}
	return errors.Join(errs...)
}

// Attach says how the programs were attached (after Start).
func (s *ebpfSource) Attach() AttachMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attach
}

// Capabilities reports which capabilities this kernel gave the capture (after Start).
func (s *ebpfSource) Capabilities() []CapabilityState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CapabilityState(nil), s.capabilities...)
}

// loadedProgramIDs is for tests: the kernel ids of the programs this source loaded.
func (s *ebpfSource) loadedProgramIDs() []ebpf.ProgramID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ebpf.ProgramID(nil), s.programIDs...)
}

func perfEventParanoid() string {
	b, err := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
