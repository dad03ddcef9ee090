//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"

	"github.com/netintel/netintelreceiver/bpf"
)

// A process that exits with sockets open never calls close() on them: the kernel drops its files
// at exit, and no syscall tells the fd table. Its entries would stay until the table is full
// (fd_table_full: new sockets no longer followed), and a later process given the same pid would
// find them. sweepExited removes the entries of processes that are gone: the owners the kernel
// counts in fd_owners whose /proc entry no longer exists. A zombie still has its /proc entry; its
// entries go at the first sweep after it is reaped.

// rootPIDNamespace is the initial PID namespace's link (PROC_PID_INIT_INO, fixed since Linux 3.8).
const rootPIDNamespace = "pid:[4026531836]"

// procShowsKernelPIDs says whether procRoot numbers processes as the kernel's programs do: this
// process runs in the initial PID namespace (hostPID: its pids are the kernel's), and procRoot
// names it by its own pid (a procfs of that namespace). A procfs of a PID namespace of its own
// (a container without hostPID) shows none of the node's other processes: swept by it, every
// live owner would look gone.
func procShowsKernelPIDs(procRoot string) (bool, error) {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return false, err
	}
	if ns != rootPIDNamespace {
		return false, fmt.Errorf("the collector runs in PID namespace %s, not the node's", ns)
	}
	self, err := os.Readlink(filepath.Join(procRoot, "self"))
	if err != nil {
		return false, err
	}
	if self != strconv.Itoa(os.Getpid()) {
		return false, fmt.Errorf("%s numbers this process %s, not %d", procRoot, self, os.Getpid())
	}
	return true, nil
}

// exitedSweep is one sweep's outcome.
type exitedSweep struct {
	Entries int // fd table entries at the sweep
	Owners  int // distinct processes owning them (or counted in fd_owners)
	Exited  int // of them, gone
	Removed int // fd table entries removed
}

// sweepExited removes the fd table entries (fds, their fd_cache slots, fd_owners) of processes
// under procRoot that no longer exist. It walks the fd table itself, so an owner fd_owners
// missed (full) is swept too; each owner's /proc entry is looked up once.
func sweepExited(procRoot string, fds, owners, cache *ebpf.Map, cacheMask uint32) (exitedSweep, error) {
	var sw exitedSweep
	keys, err := fdKeys(fds)
	sw.Entries = len(keys)
	if err != nil {
		return sw, err
	}
	alive := map[uint32]bool{}
	isAlive := func(tgid uint32) bool {
		a, seen := alive[tgid]
		if !seen {
			_, err := os.Lstat(filepath.Join(procRoot, strconv.FormatUint(uint64(tgid), 10)))
			a = !errors.Is(err, os.ErrNotExist)
			alive[tgid] = a
		}
		return a
	}
	var hot bpf.NetintelFdHot
	for _, k := range keys {
		if isAlive(k.Tgid) {
			continue
		}
		if err := fds.Delete(&k); err == nil {
			sw.Removed++
		}
		hk := uint64(k.Tgid)<<32 | uint64(uint32(k.Fd))
		slot := fdCacheSlot(k.Tgid, k.Fd, cacheMask)
		if cache.Lookup(slot, &hot) == nil && hot.Key == hk {
			_ = cache.Put(slot, bpf.NetintelFdHot{})
		}
	}
	var tgid, n uint32
	var dead []uint32
	it := owners.Iterate()
	for it.Next(&tgid, &n) {
		if !isAlive(tgid) {
			dead = append(dead, tgid)
		}
	}
	for _, t := range dead {
		_ = owners.Delete(t)
	}
	sw.Owners = len(alive)
	for _, a := range alive {
		if !a {
			sw.Exited++
		}
	}
	return sw, it.Err()
}

// fdKeys lists the fd table's keys: in batches of the kernel's batch lookup (one call per 1024
// entries), or key by key where the kernel has none. The walk ends before any delete: deleting
// from a hash map while walking it restarts the walk.
func fdKeys(fds *ebpf.Map) ([]bpf.NetintelFdKey, error) {
	var all []bpf.NetintelFdKey
	keys := make([]bpf.NetintelFdKey, 1024)
	values := make([]bpf.NetintelFdEntry, len(keys))
	var cursor ebpf.MapBatchCursor
	for {
		n, err := fds.BatchLookup(&cursor, keys, values, nil)
		all = append(all, keys[:n]...)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return all, nil
		case errors.Is(err, ebpf.ErrNotSupported):
			return fdKeysOneByOne(fds)
		case err != nil:
			return all, err
		}
	}
}

func fdKeysOneByOne(fds *ebpf.Map) ([]bpf.NetintelFdKey, error) {
	var all []bpf.NetintelFdKey
	var key, next bpf.NetintelFdKey
	var prev any // nil: the first key
	for {
		if err := fds.NextKey(prev, &next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return all, nil
			}
			return all, err
		}
		all = append(all, next)
		key = next
		prev = &key
	}
}

// fdCacheSlot is the fd_cache slot of fd of tgid (fd_hot_slot in bpf/c/common.h): a process's fds
// side by side from a point its tgid hashes to.
func fdCacheSlot(tgid uint32, fd int32, mask uint32) uint32 {
	return (uint32((uint64(tgid)*0x9E3779B97F4A7C15)>>32) + uint32(fd)) & mask
}
