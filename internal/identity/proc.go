package identity

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxProcFile bounds how much of a /proc file is read: environments can be large, and a
// service name found past this point is not worth the memory.
const maxProcFile = 64 << 10

// maxListens bounds the listening addresses remembered per process.
const maxListens = 16

// process is what /proc says about one pid, read once and cached until the process exits.
type process struct {
	pid        uint32
	comm       string // from the event (kernel comm), used to notice pid reuse
	exe        string // basename of /proc/<pid>/exe, else comm
	envName    string // OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
	envRead    bool   // /proc/<pid>/environ was readable (envName is the process's own answer)
	cg         *cgroup
	gone       bool   // exited before /proc/<pid> was read: named from its cgroup id and comm
	byIDTried  bool   // its cgroup id was looked up
	listenName string // static name of an address the process serves (one process, one service)
	listens    []netip.AddrPort
}

// procView is one read of /proc/<pid>.
type procView struct {
	exe, comm string
	envName   string
	envRead   bool
	cgroup    cgroupRef
	cgroupV2  bool // cgroup came from the v2 line: the kernel's cgroup id of the process is this cgroup's
	cgroupOK  bool // /proc/<pid>/cgroup was read: the process was alive
}

// readProcess reads /proc/<pid>: environ, cgroup and exe, through buf (maxProcFile bytes,
// reused: nothing returned points into it). Missing files (the process is gone, or we lack
// the privilege to read its environment) leave the fields empty.
func readProcess(root string, pid uint32, buf []byte) procView {
	var v procView
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if env, err := readLimited(filepath.Join(dir, "environ"), buf); err == nil {
		v.envName, v.envRead = serviceNameFromEnviron(env), true
	}
	if cg, err := readLimited(filepath.Join(dir, "cgroup"), buf); err == nil {
		v.cgroup, v.cgroupV2 = parseCgroup(string(cg))
		v.cgroupOK = true
	}
	if target, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		target = strings.TrimSuffix(target, " (deleted)")
		if b := filepath.Base(target); b != "." && b != "/" {
			v.exe = b
		}
	}
	if v.exe == "" {
		if c, err := readLimited(filepath.Join(dir, "comm"), buf); err == nil {
			v.comm = strings.TrimSpace(string(c))
		}
	}
	return v
}

func readLimited(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return buf[:n], nil
}

// serviceNameFromEnviron finds the service name an OpenTelemetry SDK in the process would
// use: OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
func serviceNameFromEnviron(env []byte) string {
	var e envNamer
	for len(env) > 0 {
		kv := env
		if i := bytes.IndexByte(env, 0); i >= 0 {
			kv, env = env[:i], env[i+1:]
		} else {
			env = nil
		}
		// Only the two keys are turned into strings.
		if (bytes.HasPrefix(kv, []byte("OTEL_SERVICE_NAME=")) || bytes.HasPrefix(kv, []byte("OTEL_RESOURCE_ATTRIBUTES="))) && e.add(string(kv)) {
			break
		}
	}
	return e.name()
}

// serviceNameFromEnv is serviceNameFromEnviron over a list of KEY=value strings (an OCI
// config's process.env, Docker's Config.Env).
func serviceNameFromEnv(env []string) string {
	var e envNamer
	for _, kv := range env {
		if e.add(kv) {
			break
		}
	}
	return e.name()
}

type envNamer struct{ otel, attrs string }

// add takes one KEY=value; it reports true once OTEL_SERVICE_NAME settled the answer.
func (e *envNamer) add(kv string) bool {
	switch {
	case strings.HasPrefix(kv, "OTEL_SERVICE_NAME="):
		if v := strings.TrimSpace(kv[len("OTEL_SERVICE_NAME="):]); v != "" {
			e.otel = v
			return true
		}
	case strings.HasPrefix(kv, "OTEL_RESOURCE_ATTRIBUTES="):
		for _, attr := range strings.Split(kv[len("OTEL_RESOURCE_ATTRIBUTES="):], ",") {
			k, v, ok := strings.Cut(attr, "=")
			if ok && strings.TrimSpace(k) == "service.name" && strings.TrimSpace(v) != "" {
				e.attrs = strings.TrimSpace(v)
			}
		}
	}
	return false
}

func (e *envNamer) name() string {
	if e.otel != "" {
		return e.otel
	}
	return e.attrs
}
