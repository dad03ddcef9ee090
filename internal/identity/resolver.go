package identity

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
	"github.com/netintel/netintelreceiver/internal/lru"
)

// Resolver names the two ends of exchanges and connections. It learns from the connection
// events (which local process serves or owns which address), from DNS answers and TLS
// handshakes seen on this node, reads /proc once per process and the container runtime's
// state once per container. Not safe for concurrent use: the pipeline calls it from one
// goroutine.
type Resolver struct {
	static   staticMap
	host     string
	procRoot string
	runtimes runtimes
	tree     cgroupTree
	now      func() time.Time

	procs     *lru.Cache[uint32, *process]            // pid → what /proc says
	listeners *lru.Cache[netip.AddrPort, uint32]      // address a local server accepted on → pid
	sockets   *lru.Cache[netip.AddrPort, socketOwner] // local address of a client socket → its owner
	// hosts maps the address of a local client socket that is no loopback to its process: a
	// pod's address names its pod where a kernel aggregate keeps only the client's address.
	hosts *lru.Cache[netip.Addr, uint32]
	// virtuals maps an address a local client dialled (a ClusterIP, a DNAT) to the local server
	// that really answered, learned from the two halves of one request (LearnVirtual).
	virtuals *lru.Cache[netip.AddrPort, virtualServer]
	dnsNames *lru.Cache[netip.Addr, string]     // address → name it was resolved from
	sniNames *lru.Cache[netip.AddrPort, string] // server address → TLS server name

	cgroups    *lru.Cache[uint64, *cgroup]    // kernel cgroup id → the cgroup
	containers *lru.Cache[string, *container] // container id → what its runtime says (or a miss)
	walked     map[uint64]string              // the last walk of the cgroup tree: id → path
	absent     *lru.Cache[uint64, struct{}]   // cgroup ids a complete walk did not find
	buf        []byte                         // reads of /proc files (one goroutine: reused)
	lastWalk   time.Time
	nextSweep  time.Time

	// Closed client sockets and exited processes wait for Settle: the kernel's aggregates of
	// their last exchanges are drained (and named) after they are gone.
	closed     []closedSocket
	exited     []uint32
	opens      uint64 // numbers each learned socket: a port reused before Settle is kept
	maxPending int

	exits           uint64 // processes evicted because they exited (or their pid was reused)
	settledEarly    uint64
	procsGone       uint64
	cgroupMisses    uint64
	cgroupsGone     uint64
	containerMisses uint64
	containersGone  uint64
	walks           uint64
}

// Counters report the resolver's table sizes, evictions and misses.
type Counters struct {
	Processes, Listeners, Sockets, DNSNames, SNINames uint64 // current entries
	Cgroups, Containers                               uint64 // current entries
	// Evictions by the size cap, per table.
	ProcessesEvicted, ListenersEvicted, SocketsEvicted, DNSNamesEvicted, SNINamesEvicted uint64
	CgroupsEvicted, ContainersEvicted                                                    uint64
	HostsEvicted, VirtualsEvicted                                                        uint64 // pod addresses, dialled virtual addresses
	ProcessesExited                                                                      uint64 // entries dropped because the process exited or its pid was reused
	// CgroupsGone and ContainersGone count entries dropped because the cgroup was removed,
	// or the runtime's state of the container was.
	CgroupsGone, ContainersGone uint64
	// ProcessesGone counts processes that had exited before /proc/<pid> could be read (their
	// cgroup id still names their container when the cgroup is known or found).
	ProcessesGone uint64
	// CgroupMisses counts processes gone before /proc was read whose cgroup id matched no
	// cgroup: they are named by their kernel comm alone.
	CgroupMisses uint64
	// ContainerMisses counts containers (a container id in a cgroup path) that no runtime
	// state on the node describes: named by their systemd unit or executable instead.
	ContainerMisses uint64
	// CgroupWalks counts walks of the cgroup hierarchy: on a miss (at most every 250 ms)
	// and at each sweep for removed cgroups.
	CgroupWalks uint64
	// SettledEarly counts closed sockets and exited processes forgotten before the next
	// Settle because too many waited (more than MaxAddresses): an aggregate of their last
	// exchanges drained after that names its client by address.
	SettledEarly uint64
}

// socketOwner is the process a client socket's address belongs to; open tells a socket from a
// later one on the same address and process.
type socketOwner struct {
	pid  uint32
	open uint64
}

type closedSocket struct {
	addr  netip.AddrPort
	owner socketOwner
}

// Intervals of the resolver's background work, done on the calls that trigger it.
const (
	sweepInterval   = 30 * time.Second       // removed cgroups and containers are forgotten
	minWalkInterval = 250 * time.Millisecond // a miss walks the cgroup tree at most this often
)

// New builds a Resolver; zero sizes take the defaults.
func New(opts Options) *Resolver {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	if opts.MaxAddresses <= 0 {
		opts.MaxAddresses = DefaultMaxAddresses
	}
	if opts.MaxCgroups <= 0 {
		opts.MaxCgroups = DefaultMaxCgroups
	}
	if opts.HostRoot == "" {
		opts.HostRoot = "/"
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = filepath.Join(opts.HostRoot, "proc")
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = filepath.Join(opts.HostRoot, "sys", "fs", "cgroup")
	}
	if opts.HostName == "" {
		opts.HostName, _ = os.Hostname()
	}
	return &Resolver{
		static:     newStaticMap(opts.Services),
		host:       opts.HostName,
		procRoot:   opts.ProcRoot,
		runtimes:   newRuntimes(opts.HostRoot, opts.DockerDataRoot, opts.ContainerdState, opts.CRIOState),
		tree:       cgroupTree{root: cgroup2Root(opts.CgroupRoot), maxDirs: maxCgroupDirs},
		now:        time.Now,
		procs:      lru.New[uint32, *process](opts.MaxProcesses),
		listeners:  lru.New[netip.AddrPort, uint32](opts.MaxAddresses),
		sockets:    lru.New[netip.AddrPort, socketOwner](opts.MaxAddresses),
		maxPending: opts.MaxAddresses,
		hosts:      lru.New[netip.Addr, uint32](opts.MaxAddresses),
		virtuals:   lru.New[netip.AddrPort, virtualServer](opts.MaxAddresses),
		dnsNames:   lru.New[netip.Addr, string](opts.MaxAddresses),
		sniNames:   lru.New[netip.AddrPort, string](opts.MaxAddresses),
		cgroups:    lru.New[uint64, *cgroup](opts.MaxCgroups),
		containers: lru.New[string, *container](opts.MaxCgroups),
		absent:     lru.New[uint64, struct{}](opts.MaxCgroups),
	}
}

// Counters reports table sizes, evictions and misses.
func (r *Resolver) Counters() Counters {
	return Counters{
		Processes: uint64(r.procs.Len()), Listeners: uint64(r.listeners.Len()),
		Sockets: uint64(r.sockets.Len()), DNSNames: uint64(r.dnsNames.Len()), SNINames: uint64(r.sniNames.Len()),
		Cgroups: uint64(r.cgroups.Len()), Containers: uint64(r.containers.Len()),
		ProcessesEvicted: r.procs.Evicted(), ListenersEvicted: r.listeners.Evicted(),
		SocketsEvicted: r.sockets.Evicted(), DNSNamesEvicted: r.dnsNames.Evicted(), SNINamesEvicted: r.sniNames.Evicted(),
		CgroupsEvicted: r.cgroups.Evicted(), ContainersEvicted: r.containers.Evicted(),
		HostsEvicted: r.hosts.Evicted(), VirtualsEvicted: r.virtuals.Evicted(),
		ProcessesExited: r.exits,
		CgroupsGone:     r.cgroupsGone, ContainersGone: r.containersGone,
		ProcessesGone: r.procsGone, CgroupMisses: r.cgroupMisses, ContainerMisses: r.containerMisses,
		CgroupWalks: r.walks, SettledEarly: r.settledEarly,
	}
}

// Conn learns from a connection event: the address a local server accepted on belongs to its
// process, a local client socket's address belongs to its process until it closes (and the
// next Settle), a close is when a process that has exited is found out, and every
// sweepInterval removed cgroups and containers are forgotten.
func (r *Resolver) Conn(ev *capture.ConnEvent) {
	pid := ev.Process.PID
	switch ev.Kind {
	case capture.ConnOpened:
		if pid == 0 {
			return
		}
		r.learnSocket(ev.Process, ev.Socket)
	case capture.ConnClosed:
		if ev.Socket.Role == capture.RoleClient {
			addr := unmap(ev.Socket.Local)
			if owner, ok := r.sockets.Peek(addr); ok && (pid == 0 || owner.pid == pid) {
				r.pend(func() { r.closed = append(r.closed, closedSocket{addr, owner}) })
			}
		}
		if pid != 0 {
			if _, ok := r.procs.Peek(pid); ok && !r.alive(pid) {
				r.pend(func() { r.exited = append(r.exited, pid) })
			}
		}
		if now := r.now(); !now.Before(r.nextSweep) {
			r.nextSweep = now.Add(sweepInterval)
			r.sweep(now)
		}
	}
}

// pend queues a socket or a process to forget at the next Settle; when too many wait, the
// oldest half is forgotten now.
func (r *Resolver) pend(add func()) {
	if len(r.closed)+len(r.exited) >= r.maxPending {
		n := len(r.closed) + len(r.exited)
		r.settle(len(r.closed)/2, len(r.exited)/2)
		r.settledEarly += uint64(n - len(r.closed) - len(r.exited))
	}
	add()
}

// Settle forgets the client sockets that closed and the processes that exited since the last
// Settle. The pipeline calls it after naming the kernel's aggregates, which count exchanges of
// sockets and processes that may be gone by the time they are drained.
func (r *Resolver) Settle() { r.settle(len(r.closed), len(r.exited)) }

func (r *Resolver) settle(sockets, procs int) {
	for _, c := range r.closed[:sockets] {
		if owner, ok := r.sockets.Peek(c.addr); ok && owner == c.owner {
			r.sockets.Remove(c.addr)
		}
	}
	r.closed = append(r.closed[:0], r.closed[sockets:]...)
	for _, pid := range r.exited[:procs] {
		if !r.alive(pid) {
			r.forget(pid)
		}
	}
	r.exited = append(r.exited[:0], r.exited[procs:]...)
}

func (r *Resolver) alive(pid uint32) bool {
	_, err := os.Stat(filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10)))
	return !os.IsNotExist(err)
}

// Data learns the owner of sockets whose connect or accept predates the capture.
func (r *Resolver) Data(ev *capture.DataEvent) {
	if ev.Process.PID == 0 || ev.Socket.Transport != capture.TransportTCP {
		return
	}
	switch ev.Socket.Role {
	case capture.RoleServer:
		if pid, ok := r.listeners.Peek(unmap(ev.Socket.Local)); ok && pid == ev.Process.PID {
			return
		}
	case capture.RoleClient:
		if owner, ok := r.sockets.Peek(unmap(ev.Socket.Local)); ok && owner.pid == ev.Process.PID {
			return
		}
	default:
		return
	}
	r.learnSocket(ev.Process, ev.Socket)
}

func (r *Resolver) learnSocket(proc capture.Process, s capture.Socket) {
	local := unmap(s.Local)
	switch s.Role {
	case capture.RoleServer:
		r.listeners.Put(local, proc.PID)
		p := r.process(proc)
		if len(p.listens) < maxListens && !containsAddr(p.listens, local) {
			p.listens = append(p.listens, local)
		}
		if p.listenName == "" {
			if n, ok := r.static.lookup(local); ok {
				p.listenName = n
			}
		}
	case capture.RoleClient:
		r.opens++
		r.sockets.Put(local, socketOwner{proc.PID, r.opens})
		if a := local.Addr(); !a.IsLoopback() && !a.IsUnspecified() {
			r.hosts.Put(a, proc.PID)
		}
		// Read /proc now: a short-lived client may be gone by the time its exchange is named.
		r.process(proc)
	}
}

func containsAddr(list []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// forget drops a process that exited, with the addresses it served.
func (r *Resolver) forget(pid uint32) {
	p, ok := r.procs.Peek(pid)
	if !ok {
		return
	}
	for _, a := range p.listens {
		if owner, ok := r.listeners.Peek(a); ok && owner == pid {
			r.listeners.Remove(a)
		}
	}
	r.procs.Remove(pid)
	r.exits++
}

// process returns the cached /proc view of pid, reading it on first sight. A different comm
// than the cached one means the pid was reused by a new process.
func (r *Resolver) process(proc capture.Process) *process {
	pid, comm := proc.PID, proc.Comm
	if p, ok := r.procs.Get(pid); ok {
		if comm == "" || p.comm == "" || p.comm == comm {
			if p.comm == "" {
				p.comm = comm
			}
			if p.gone && p.cg == nil && proc.CgroupID != 0 && !p.byIDTried {
				// Gone before it was read, and first known by pid alone (a socket's owner).
				p.byIDTried = true
				p.cg = r.cgroupByID(proc.CgroupID)
			}
			return p
		}
		r.forget(pid)
	}
	if r.buf == nil {
		r.buf = make([]byte, maxProcFile)
	}
	v := readProcess(r.procRoot, pid, r.buf)
	p := &process{pid: pid, comm: comm, exe: v.exe, envName: v.envName, envRead: v.envRead}
	if p.comm == "" {
		p.comm = v.comm
	}
	if p.exe == "" {
		p.exe = p.comm
	}
	switch {
	case v.cgroupOK:
		p.cg = r.cgroupOf(proc.CgroupID, v.cgroup, v.cgroupV2)
	case proc.CgroupID != 0:
		r.procsGone++
		p.gone, p.byIDTried = true, true
		p.cg = r.cgroupByID(proc.CgroupID)
	default:
		r.procsGone++
		p.gone = true
	}
	r.procs.Put(pid, p)
	return p
}

// cgroupOf is the cgroup a live process's /proc/<pid>/cgroup named. When that came from the
// cgroup v2 line, the kernel's id of the cgroup is remembered for the processes of the same
// cgroup that exit before they are read.
func (r *Resolver) cgroupOf(id uint64, ref cgroupRef, fromV2 bool) *cgroup {
	if id == 0 || !fromV2 {
		return r.newCgroup(ref)
	}
	if cg, ok := r.cgroups.Get(id); ok && cg.cgroupRef == ref {
		return cg
	}
	cg := r.newCgroup(ref)
	r.cgroups.Put(id, cg)
	return cg
}

// cgroupByID names the cgroup of a process that is gone: from the table, else from the last
// walk of the cgroup tree, else from a new walk (at most once per minWalkInterval).
func (r *Resolver) cgroupByID(id uint64) *cgroup {
	if cg, ok := r.cgroups.Get(id); ok {
		return cg
	}
	path, ok := r.walked[id]
	if _, absent := r.absent.Peek(id); !ok && !absent {
		if now := r.now(); r.tree.root != "" && now.Sub(r.lastWalk) >= minWalkInterval {
			r.lastWalk = now
			complete := r.walk()
			if path, ok = r.walked[id]; !ok && complete {
				// Removed already (a one-shot container): its other processes walk no more.
				r.absent.Put(id, struct{}{})
			}
		}
	}
	if !ok {
		r.cgroupMisses++
		return nil
	}
	cg := r.newCgroup(refFromPath(path))
	r.cgroups.Put(id, cg)
	return cg
}

// walk reads the whole cgroup tree into r.walked; it reports whether it saw all of it.
func (r *Resolver) walk() bool {
	r.walks++
	walked := make(map[uint64]string, max(len(r.walked), 64))
	complete := r.tree.walk(func(id uint64, path string) { walked[id] = path })
	r.walked = walked
	return complete
}

func (r *Resolver) newCgroup(ref cgroupRef) *cgroup {
	cg := &cgroup{cgroupRef: ref}
	if ref.containerID != "" {
		cg.container = r.container(ref.containerID)
	}
	return cg
}

// container returns what the runtime state says about a container, reading it once.
func (r *Resolver) container(id string) *container {
	if c, ok := r.containers.Get(id); ok {
		return c
	}
	c := r.runtimes.lookup(id)
	if c == nil {
		c = &container{id: id}
		r.containerMisses++
	}
	r.containers.Put(id, c)
	return c
}

// sweep forgets containers whose runtime state was removed and cgroups that were removed.
// Processes that still point at them keep their names; new ones read them again.
func (r *Resolver) sweep(now time.Time) {
	var gone []string
	for id, c := range r.containers.All() {
		if c.state == "" {
			continue // a miss: forgotten with its cgroup
		}
		if _, err := os.Stat(c.state); os.IsNotExist(err) {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		if c, ok := r.containers.Peek(id); ok {
			c.gone = true
		}
		r.containers.Remove(id)
		r.containersGone++
	}
	if r.cgroups.Len() == 0 {
		return
	}
	// Without the cgroup tree, a cgroup goes with its container's runtime state.
	live := func(_ uint64, cg *cgroup) bool { return cg.container == nil || !cg.container.gone }
	if r.tree.root != "" {
		r.lastWalk = now
		if r.walk() {
			live = func(id uint64, _ *cgroup) bool { _, ok := r.walked[id]; return ok }
		}
	}
	var removed []uint64
	for id, cg := range r.cgroups.All() {
		if !live(id, cg) {
			removed = append(removed, id)
		}
	}
	for _, id := range removed {
		if cg, ok := r.cgroups.Peek(id); ok && cg.container != nil && cg.container.state == "" {
			r.containers.Remove(cg.container.id)
		}
		r.cgroups.Remove(id)
		r.cgroupsGone++
	}
}

// Learn takes names from exchanges: DNS answers name the addresses a client resolved, a TLS
// server name names the address it was sent to, and the observed end of an exchange tells
// which process owns its address (UDP servers have no accept to learn it from).
func (r *Resolver) Learn(x *l7.Exchange) {
	switch {
	case x.Side == l7.SideServer && x.Server.Process.PID != 0:
		if pid, ok := r.listeners.Peek(unmap(x.Server.Addr)); !ok || pid != x.Server.Process.PID {
			r.learnSocket(x.Server.Process, capture.Socket{Role: capture.RoleServer, Local: x.Server.Addr})
		}
	case x.Side == l7.SideClient && x.Client.Process.PID != 0:
		if owner, ok := r.sockets.Peek(unmap(x.Client.Addr)); !ok || owner.pid != x.Client.Process.PID {
			r.learnSocket(x.Client.Process, capture.Socket{Role: capture.RoleClient, Local: x.Client.Addr})
		}
	}
	if x.DNS != nil && x.DNS.RCode == 0 && x.DNS.Name != "" {
		for _, a := range x.DNS.Answers {
			r.dnsNames.Put(a.Unmap(), x.DNS.Name)
		}
	}
	if x.TLS != nil && x.TLS.SNI != "" && x.Server.Addr.IsValid() {
		r.sniNames.Put(unmap(x.Server.Addr), x.TLS.SNI)
	}
}

// clientsPrefix is how remote clients are grouped in netintel.client.network.
const (
	clientsPrefixV4 = 24
	clientsPrefixV6 = 64
	clientsOf       = "clients of "
)

// Client names the end of x that sent the request. A remote client nothing names is one of
// the "clients of <server>" when the server is local: an Internet-facing service makes one
// edge, not one per client address.
func (r *Resolver) Client(x *l7.Exchange) Service {
	ep := x.Client
	proc := ep.Process
	if proc.PID == 0 {
		proc = capture.Process{}
		owner, _ := r.sockets.Peek(unmap(ep.Addr))
		proc.PID = owner.pid
		if proc.PID == 0 && ep.Addr.Port() == 0 {
			// A kernel aggregate keeps a cluster client's address only: its pod, if it is here.
			proc.PID, _ = r.hosts.Peek(ep.Addr.Addr().Unmap())
		}
	}
	if proc.PID != 0 {
		return r.local(proc, ep.Addr, false)
	}
	// A remote client's port is ephemeral: naming it would make a service per connection.
	addr := ep.Addr.Addr().Unmap()
	if n, ok := r.static.lookup(ep.Addr); ok {
		return remote(n)
	}
	if n, ok := r.dnsNames.Peek(addr); ok {
		return remote(n)
	}
	if server := r.Server(x); server.Local && addr.IsValid() {
		bits := clientsPrefixV4
		if addr.Is6() {
			bits = clientsPrefixV6
		}
		network, _ := addr.Prefix(bits)
		s := remote(clientsOf + server.Name)
		s.Resource.ClientNetwork = network.String()
		return s
	}
	return remote(addr.String())
}

// Server names the end of x that received the request.
func (r *Resolver) Server(x *l7.Exchange) Service {
	return r.server(x.Server.Addr, x.Server.Process)
}

func (r *Resolver) server(addr netip.AddrPort, proc capture.Process) Service {
	if proc.PID == 0 {
		proc = capture.Process{}
		proc.PID, _ = r.listeners.Peek(unmap(addr))
	}
	if proc.PID == 0 {
		if v, ok := r.virtuals.Peek(unmap(addr)); ok {
			return r.local(capture.Process{PID: v.pid}, v.addr, true)
		}
	}
	if proc.PID != 0 {
		return r.local(proc, addr, true)
	}
	if n, ok := r.static.lookup(addr); ok {
		return remote(n)
	}
	if n, ok := r.dnsNames.Peek(addr.Addr().Unmap()); ok {
		return remote(n)
	}
	if n, ok := r.sniNames.Peek(unmap(addr)); ok {
		return remote(n)
	}
	return remote(unmap(addr).String())
}

// ConnEnds names the client and server of a connection event. A reset the kernel sends for
// a port nobody listens on has no process: its peer is the client (often a scanner).
func (r *Resolver) ConnEnds(ev *capture.ConnEvent) (client, server Service) {
	s := ev.Socket
	localIsClient := s.Role == capture.RoleClient ||
		(s.Role == capture.RoleUnknown && ev.Kind == capture.ConnFailed)
	if localIsClient {
		x := l7.Exchange{Client: l7.Endpoint{Addr: s.Local, Process: ev.Process}, Server: l7.Endpoint{Addr: s.Remote}}
		return r.Client(&x), r.Server(&x)
	}
	proc := ev.Process
	if s.Role == capture.RoleUnknown {
		// A reset without a socket is sent from softirq context: the task is whoever was
		// running, not the owner of the address.
		proc = capture.Process{}
	}
	x := l7.Exchange{Client: l7.Endpoint{Addr: s.Remote}, Server: l7.Endpoint{Addr: s.Local, Process: proc}}
	return r.Client(&x), r.Server(&x)
}

// unmap keys addresses by their IPv4 form: a dual-stack socket reports ::ffff:127.0.0.1 where
// another reports 127.0.0.1.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func remote(name string) Service {
	return Service{Name: name, Resource: Resource{ServiceName: name}}
}

// local names a process on this node, in the order of DESIGN §5: a static mapping of the
// address (a server's own address first; the address a process serves also names its
// outgoing calls), OTEL_SERVICE_NAME, the Kubernetes workload, the Docker container name,
// the systemd unit, the executable.
func (r *Resolver) local(proc capture.Process, addr netip.AddrPort, isServer bool) Service {
	p := r.process(proc)
	var c *container
	unit := ""
	if p.cg != nil {
		c, unit = p.cg.container, p.cg.unit
	}
	name, ok := "", false
	if !r.static.empty() {
		if isServer {
			name, ok = r.static.lookup(addr)
		} else {
			name, ok = r.static.exactName(addr)
		}
		if !ok && p.listenName != "" {
			name, ok = p.listenName, true
		}
		if !ok && !isServer {
			name, ok = r.static.prefixName(addr.Addr())
		}
	}
	if !ok {
		switch {
		case p.envName != "":
			name = p.envName
		case !p.envRead && c != nil && c.envName != "":
			// The process's own environment could not be read (it exited, or another user's
			// without CAP_SYS_PTRACE): the one its container was started with.
			name = c.envName
		case c != nil && c.workload != "":
			name = c.workload
		case c != nil && c.name != "":
			name = c.name
		case unit != "":
			name = unit
		case p.exe != "":
			name = p.exe
		default:
			name = "pid:" + strconv.FormatUint(uint64(proc.PID), 10)
		}
	}
	res := Resource{
		ServiceName:    name,
		PID:            proc.PID,
		ExecutableName: p.exe,
		HostName:       r.host,
	}
	if c != nil {
		res.ContainerID = c.id
		res.ContainerName = c.name
		res.K8sNamespace, res.K8sPodName, res.K8sPodUID, res.K8sContainer = c.pod.namespace, c.pod.name, c.pod.uid, c.pod.container
	}
	return Service{Name: name, Local: true, Resource: res}
}

// Sources says what naming can read on this node, for the receiver's start-up log: an
// operator sees at once which mount of the DaemonSet is missing.
type Sources struct {
	Proc         string   // the proc root; "" when it shows no processes
	CgroupV2     string   // the cgroup v2 hierarchy; "" when none is visible
	RuntimeState []string // the container runtimes' state directories that exist
}

// Sources reports what the resolver can read.
func (r *Resolver) Sources() Sources {
	var s Sources
	if _, err := os.Stat(filepath.Join(r.procRoot, "1")); err == nil {
		s.Proc = r.procRoot
	}
	s.CgroupV2 = r.tree.root
	for _, dirs := range [][]string{r.runtimes.containerd, r.runtimes.crio, r.runtimes.docker} {
		for _, d := range dirs {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				s.RuntimeState = append(s.RuntimeState, d)
			}
		}
	}
	return s
}

// virtualServer is the local server behind a virtual address.
type virtualServer struct {
	addr netip.AddrPort
	pid  uint32
}

// LearnVirtual records that requests a local client sent to dialled (a Kubernetes ClusterIP, a
// DNAT) were served by the local server at real: the two halves of one request (same ISNs and
// request sequence number) named different server addresses. Later exchanges and aggregates to
// dialled are named by that server, so the service graph has one real edge, not a virtual node
// beside it.
func (r *Resolver) LearnVirtual(dialled, real netip.AddrPort, pid uint32) {
	dialled, real = unmap(dialled), unmap(real)
	if dialled == real || pid == 0 || !dialled.IsValid() {
		return
	}
	if _, ok := r.listeners.Peek(dialled); ok {
		return // a real local listener: nothing virtual about it
	}
	r.virtuals.Put(dialled, virtualServer{addr: real, pid: pid})
}

// AggregateEnds names the two ends of exchanges the kernel counted: the observing process by its
// pid, the peer as an exchange's peer would be (a client sharing a server's address by its port,
// a pod by its address, the Internet as the clients of the service).
func (r *Resolver) AggregateEnds(a *l7.Aggregate) (client, server Service) {
	x := &l7.Exchange{Side: a.Side, Client: a.Client, Server: a.Server}
	if a.Side == l7.SideServer {
		server = r.local(a.Server.Process, a.Server.Addr, true)
		return r.Client(x), server
	}
	return r.local(a.Client.Process, a.Client.Addr, false), r.Server(x)
}
