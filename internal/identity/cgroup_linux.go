package identity

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
)

// cgroupTree finds a cgroup by its id, the inode number of its directory in the cgroup v2
// filesystem (what the kernel programs record for each event). It is how a process that
// exited before /proc/<pid> could be read is still named by its container.
type cgroupTree struct {
	root    string // the cgroup v2 mount; "" when none is visible (cgroup v1 only)
	maxDirs int
}

// cgroup2Root is the cgroup v2 hierarchy under cgroupRoot: the root itself on a v2 host,
// "unified" on a hybrid one, "" on a v1-only host.
func cgroup2Root(cgroupRoot string) string {
	for _, dir := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
			return dir
		}
	}
	return ""
}

// walk visits every cgroup directory, depth first, with its id and its path from the root
// ("/docker/<id>"). It stops after maxDirs directories and reports whether it saw them all.
// The ids come from the directory entries themselves (getdents), so a cgroup costs one open
// and one or two getdents of its parent, no stat.
func (t cgroupTree) walk(visit func(id uint64, path string)) (complete bool) {
	if t.root == "" {
		return false
	}
	var root syscall.Stat_t
	if err := syscall.Stat(t.root, &root); err != nil {
		return false
	}
	type dir struct {
		rel string
		id  uint64
	}
	stack := []dir{{"/", root.Ino}}
	buf := make([]byte, 32<<10)
	seen := 0
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen == t.maxDirs {
			return false
		}
		seen++
		visit(d.id, d.rel)
		fd, err := syscall.Open(filepath.Join(t.root, d.rel), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			continue // removed while we walked
		}
		for {
			n, err := syscall.Getdents(fd, buf)
			if err != nil || n <= 0 {
				break
			}
			for b := buf[:n]; len(b) >= direntHeader; {
				reclen := int(binary.NativeEndian.Uint16(b[16:18]))
				if reclen < direntHeader || reclen > len(b) {
					break
				}
				if b[18] == syscall.DT_DIR {
					name := b[direntHeader:reclen]
					if i := bytes.IndexByte(name, 0); i >= 0 {
						name = name[:i]
					}
					if s := string(name); s != "." && s != ".." {
						stack = append(stack, dir{filepath.Join(d.rel, s), binary.NativeEndian.Uint64(b[0:8])})
					}
				}
				b = b[reclen:]
			}
		}
		syscall.Close(fd)
	}
	return true
}

// direntHeader is the fixed part of a linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
// d_type (1), then the NUL-terminated name.
const direntHeader = 19
