//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netintel/netintelreceiver/bpf"
)

// Sockets opened before the capture never pass the socket(), accept() or connect() the fd table
// is fed by. seed finds them in /proc — every process's socket fds, matched by inode against the
// TCP and UDP tables of its network namespace — and enters them with their role: a TCP socket
// whose local port has a listener in its namespace is the server side (the kernel's listening
// state, not a guess from port order). The kernel fills in the socket itself at the fd's first
// read or write.

// procSocket is one TCP/UDP socket of a network namespace's tables.
type procSocket struct {
	transport uint8
	localPort uint16
	localAddr string // hex, as the table prints it
	listening bool
}

// netTables maps socket inodes of one network namespace to what its tables say.
type netTables struct {
	byInode map[uint64]procSocket
	// listeners holds "port" and "addr:port" keys of listening TCP sockets.
	listeners map[string]bool
}

func readNetTables(procDir string) *netTables {
	t := &netTables{byInode: map[uint64]procSocket{}, listeners: map[string]bool{}}
	for _, f := range []struct {
		name      string
		transport uint8
	}{{"tcp", uint8(TransportTCP)}, {"tcp6", uint8(TransportTCP)}, {"udp", uint8(TransportUDP)}, {"udp6", uint8(TransportUDP)}} {
		b, err := os.ReadFile(filepath.Join(procDir, "net", f.name))
		if err != nil {
			continue
		}
		parseNetTable(b, f.transport, t)
	}
	return t
}

// tcpListen is TCP_LISTEN in the st column of /proc/net/tcp.
const tcpListen = 0x0A

// parseNetTable reads one /proc/net/{tcp,tcp6,udp,udp6} table into t.
func parseNetTable(b []byte, transport uint8, t *netTables) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		addr, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		state, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		ps := procSocket{transport: transport, localPort: uint16(port), localAddr: addr}
		if transport == uint8(TransportTCP) && state == tcpListen {
			ps.listening = true
			t.listeners[strconv.Itoa(int(port))+"@"+addr] = true
			if strings.Trim(addr, "0") == "" {
				t.listeners[strconv.Itoa(int(port))] = true // a wildcard listener
			}
		}
		t.byInode[inode] = ps
	}
}

// role says which side a socket is, from its namespace's listeners.
func (t *netTables) role(ps procSocket) Role {
	if ps.transport != uint8(TransportTCP) {
		return RoleUnknown
	}
	p := strconv.Itoa(int(ps.localPort))
	if t.listeners[p] || t.listeners[p+"@"+ps.localAddr] {
		return RoleServer
	}
	return RoleClient
}

// seedCounts is what a seed found.
type seedCounts struct {
	Sockets, Seeded, Existing int
	Full                      int // not entered: the fd table was full
}

// seedFromProc enters the inet sockets of every process under procRoot into the fd table.
// Entries the kernel already made (a socket created since the programs attached) are kept; those
// a full table has no room for are counted (Full), and the capture starts without them.
func seedFromProc(procRoot string, fds, owners *ebpf.Map, exclude uint32) (seedCounts, error) {
	var c seedCounts
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return c, fmt.Errorf("net_intel: read %s to find sockets opened before the capture: %w", procRoot, err)
	}
	tables := map[string]*netTables{} // by network namespace
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || uint32(pid) == exclude {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		fdDir := filepath.Join(dir, "fd")
		fdEntries, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to read (CAP_SYS_PTRACE)
		}
		var t *netTables
		for _, fe := range fdEntries {
			link, err := os.Readlink(filepath.Join(fdDir, fe.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if t == nil {
				ns, _ := os.Readlink(filepath.Join(dir, "ns", "net"))
				if t = tables[ns]; t == nil {
					t = readNetTables(dir)
					tables[ns] = t
				}
			}
			ps, ok := t.byInode[inode]
			if !ok || ps.listening {
				continue // not TCP/UDP, or a listener (its accepted sockets are what carry data)
			}
			fd, err := strconv.ParseInt(fe.Name(), 10, 32)
			if err != nil {
				continue
			}
			c.Sockets++
			st := bpf.NetintelFdEntry{Transport: ps.transport, Role: uint8(t.role(ps)), Seeded: 1}
			key := bpf.NetintelFdKey{Tgid: uint32(pid), Fd: int32(fd)}
			switch err := fds.Update(&key, &st, ebpf.UpdateNoExist); {
			case err == nil:
				c.Seeded++
				var n uint32
				_ = owners.Lookup(uint32(pid), &n)
				_ = owners.Put(uint32(pid), n+1)
			case errors.Is(err, ebpf.ErrKeyExist):
				c.Existing++
			case errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOMEM):
				// The table is full: the capture starts without the rest (counted), not at all.
				c.Full++
			default:
				return c, fmt.Errorf("net_intel: seed the kernel fd table: %w", err)
			}
		}
	}
	return c, nil
}
