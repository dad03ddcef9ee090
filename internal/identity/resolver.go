package identity

import (
	"github.com/netintel/netintelreceiver/internal/lru"

	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Resolver names the two ends of exchanges and connections. It learns from the connection
// events (which local process serves or owns which address), from DNS answers and TLS
// handshakes seen on this node, and reads /proc once per process. Not safe for concurrent
// use: the pipeline calls it from one goroutine.
type Resolver struct {
	static   staticMap
	host     string
	procRoot string

	procs     *lru.Cache[uint32, *process]       // pid → what /proc says
	listeners *lru.Cache[netip.AddrPort, uint32] // address a local server accepted on → pid
	sockets   *lru.Cache[netip.AddrPort, uint32] // local address of a client socket → pid
	dnsNames  *lru.Cache[netip.Addr, string]     // address → name it was resolved from
	sniNames  *lru.Cache[netip.AddrPort, string] // server address → TLS server name

	exits uint64 // processes evicted because they exited (or their pid was reused)
}

// Counters report the resolver's table sizes and evictions.
type Counters struct {
	Processes, Listeners, Sockets, DNSNames, SNINames uint64 // current entries
	// Evictions by the size cap, per table.
	ProcessesEvicted, ListenersEvicted, SocketsEvicted, DNSNamesEvicted, SNINamesEvicted uint64
	ProcessesExited                                                                      uint64 // entries dropped because the process exited or its pid was reused
}

// New builds a Resolver; zero sizes take the defaults.
func New(opts Options) *Resolver {
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	if opts.MaxAddresses <= 0 {
		opts.MaxAddresses = DefaultMaxAddresses
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = defaultProcRoot
	}
	if opts.HostName == "" {
		opts.HostName, _ = os.Hostname()
	}
	return &Resolver{
		static:    newStaticMap(opts.Services),
		host:      opts.HostName,
		procRoot:  opts.ProcRoot,
		procs:     lru.New[uint32, *process](opts.MaxProcesses),
		listeners: lru.New[netip.AddrPort, uint32](opts.MaxAddresses),
		sockets:   lru.New[netip.AddrPort, uint32](opts.MaxAddresses),
		dnsNames:  lru.New[netip.Addr, string](opts.MaxAddresses),
		sniNames:  lru.New[netip.AddrPort, string](opts.MaxAddresses),
	}
}

// Counters reports table sizes and evictions.
func (r *Resolver) Counters() Counters {
	return Counters{
		Processes: uint64(r.procs.Len()), Listeners: uint64(r.listeners.Len()),
		Sockets: uint64(r.sockets.Len()), DNSNames: uint64(r.dnsNames.Len()), SNINames: uint64(r.sniNames.Len()),
		ProcessesEvicted: r.procs.Evicted(), ListenersEvicted: r.listeners.Evicted(),
		SocketsEvicted: r.sockets.Evicted(), DNSNamesEvicted: r.dnsNames.Evicted(), SNINamesEvicted: r.sniNames.Evicted(),
		ProcessesExited: r.exits,
	}
}

// Conn learns from a connection event: the address a local server accepted on belongs to its
// process, a local client socket's address belongs to its process until it closes, and a
// close is when a process that has exited is forgotten.
func (r *Resolver) Conn(ev *capture.ConnEvent) {
	pid := ev.Process.PID
	switch ev.Kind {
	case capture.ConnOpened:
		if pid == 0 {
			return
		}
		r.learnSocket(pid, ev.Process.Comm, ev.Socket)
	case capture.ConnClosed:
		if ev.Socket.Role == capture.RoleClient {
			if owner, ok := r.sockets.Peek(unmap(ev.Socket.Local)); ok && (pid == 0 || owner == pid) {
				r.sockets.Remove(unmap(ev.Socket.Local))
			}
		}
		if pid != 0 {
			if _, ok := r.procs.Peek(pid); ok {
				if _, err := os.Stat(filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10))); os.IsNotExist(err) {
					r.forget(pid)
				}
			}
		}
	}
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
		if pid, ok := r.sockets.Peek(unmap(ev.Socket.Local)); ok && pid == ev.Process.PID {
			return
		}
	default:
		return
	}
	r.learnSocket(ev.Process.PID, ev.Process.Comm, ev.Socket)
}

func (r *Resolver) learnSocket(pid uint32, comm string, s capture.Socket) {
	local := unmap(s.Local)
	switch s.Role {
	case capture.RoleServer:
		r.listeners.Put(local, pid)
		p := r.process(pid, comm)
		if len(p.listens) < maxListens && !containsAddr(p.listens, local) {
			p.listens = append(p.listens, local)
		}
		if p.listenName == "" {
			if n, ok := r.static.lookup(local); ok {
				p.listenName = n
			}
		}
	case capture.RoleClient:
		r.sockets.Put(local, pid)
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
func (r *Resolver) process(pid uint32, comm string) *process {
	if p, ok := r.procs.Get(pid); ok {
		if comm == "" || p.comm == "" || p.comm == comm {
			if p.comm == "" {
				p.comm = comm
			}
			return p
		}
		r.forget(pid)
	}
	p := readProcess(r.procRoot, pid, comm)
	r.procs.Put(pid, p)
	return p
}

// Learn takes names from exchanges: DNS answers name the addresses a client resolved, a TLS
// server name names the address it was sent to, and the observed end of an exchange tells
// which process owns its address (UDP servers have no accept to learn it from).
func (r *Resolver) Learn(x *l7.Exchange) {
	switch {
	case x.Side == l7.SideServer && x.Server.Process.PID != 0:
		if pid, ok := r.listeners.Peek(unmap(x.Server.Addr)); !ok || pid != x.Server.Process.PID {
			r.learnSocket(x.Server.Process.PID, x.Server.Process.Comm, capture.Socket{Role: capture.RoleServer, Local: x.Server.Addr})
		}
	case x.Side == l7.SideClient && x.Client.Process.PID != 0:
		if pid, ok := r.sockets.Peek(unmap(x.Client.Addr)); !ok || pid != x.Client.Process.PID {
			r.sockets.Put(unmap(x.Client.Addr), x.Client.Process.PID)
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

// Client names the end of x that sent the request.
func (r *Resolver) Client(x *l7.Exchange) Service {
	ep := x.Client
	pid, comm := ep.Process.PID, ep.Process.Comm
	if pid == 0 {
		pid, _ = r.sockets.Peek(unmap(ep.Addr))
	}
	if pid != 0 {
		return r.local(pid, comm, ep.Addr, false)
	}
	// A remote client's port is ephemeral: naming it would make a service per connection.
	if n, ok := r.static.lookup(ep.Addr); ok {
		return remote(n)
	}
	if n, ok := r.dnsNames.Peek(ep.Addr.Addr().Unmap()); ok {
		return remote(n)
	}
	return remote(ep.Addr.Addr().Unmap().String())
}

// Server names the end of x that received the request.
func (r *Resolver) Server(x *l7.Exchange) Service {
	return r.server(x.Server.Addr, x.Server.Process.PID, x.Server.Process.Comm)
}

func (r *Resolver) server(addr netip.AddrPort, pid uint32, comm string) Service {
	if pid == 0 {
		pid, _ = r.listeners.Peek(unmap(addr))
	}
	if pid != 0 {
		return r.local(pid, comm, addr, true)
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
// outgoing calls), OTEL_SERVICE_NAME, the systemd unit, the executable.
func (r *Resolver) local(pid uint32, comm string, addr netip.AddrPort, isServer bool) Service {
	p := r.process(pid, comm)
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
		case p.unitName != "":
			name = p.unitName
		case p.exe != "":
			name = p.exe
		default:
			name = "pid:" + strconv.FormatUint(uint64(pid), 10)
		}
	}
	return Service{
		Name:  name,
		Local: true,
		Resource: Resource{
			ServiceName:    name,
			PID:            pid,
			ExecutableName: p.exe,
			ContainerID:    p.containerID,
			HostName:       r.host,
		},
	}
}
