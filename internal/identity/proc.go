package identity

import (
	"bytes"
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
	pid         uint32
	comm        string // from the event (kernel comm), used to notice pid reuse
	exe         string // basename of /proc/<pid>/exe, else comm
	envName     string // OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
	unitName    string // systemd unit the process runs in ("nginx" for nginx.service)
	containerID string // 64-hex id from a docker/containerd/cri-o/podman cgroup path
	listenName  string // static name of an address the process serves (one process, one service)
	listens     []netip.AddrPort
}

// readProcess reads /proc/<pid>: environ, cgroup and exe. Missing files (the process is gone,
// or we lack the privilege to read its environment) leave the fields empty.
func readProcess(root string, pid uint32, comm string) *process {
	p := &process{pid: pid, comm: comm}
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if env, err := readLimited(filepath.Join(dir, "environ")); err == nil {
		p.envName = serviceNameFromEnviron(env)
	}
	if cg, err := readLimited(filepath.Join(dir, "cgroup")); err == nil {
		p.containerID, p.unitName = parseCgroup(string(cg))
	}
	if target, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		target = strings.TrimSuffix(target, " (deleted)")
		if b := filepath.Base(target); b != "." && b != "/" {
			p.exe = b
		}
	}
	if p.exe == "" && p.comm == "" {
		if c, err := readLimited(filepath.Join(dir, "comm")); err == nil {
			p.comm = strings.TrimSpace(string(c))
		}
	}
	if p.exe == "" {
		p.exe = p.comm
	}
	return p
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxProcFile)
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	return buf[:n], nil
}

// serviceNameFromEnviron finds the service name an OpenTelemetry SDK in the process would
// use: OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
func serviceNameFromEnviron(env []byte) string {
	var fromAttrs string
	for _, kv := range bytes.Split(env, []byte{0}) {
		switch {
		case bytes.HasPrefix(kv, []byte("OTEL_SERVICE_NAME=")):
			if v := strings.TrimSpace(string(kv[len("OTEL_SERVICE_NAME="):])); v != "" {
				return v
			}
		case bytes.HasPrefix(kv, []byte("OTEL_RESOURCE_ATTRIBUTES=")):
			for _, attr := range strings.Split(string(kv[len("OTEL_RESOURCE_ATTRIBUTES="):]), ",") {
				k, v, ok := strings.Cut(attr, "=")
				if ok && strings.TrimSpace(k) == "service.name" && strings.TrimSpace(v) != "" {
					fromAttrs = strings.TrimSpace(v)
				}
			}
		}
	}
	return fromAttrs
}

// parseCgroup extracts a container id and a systemd unit name from /proc/<pid>/cgroup.
// The cgroup v2 line ("0::/path") is preferred; on hybrid hosts the name=systemd line and
// then any other line are tried.
//
// Container paths seen in practice:
//
//	/docker/<id>                                     docker, cgroupfs driver
//	/system.slice/docker-<id>.scope                  docker, systemd driver
//	/kubepods/burstable/pod<uid>/<id>                kubelet, cgroupfs driver
//	/kubepods.slice/.../cri-containerd-<id>.scope    containerd, systemd driver
//	/kubepods.slice/.../crio-<id>.scope              cri-o
//	/machine.slice/libpod-<id>.scope                 podman
func parseCgroup(content string) (containerID, unit string) {
	var paths []string
	var v2, systemd string
	for _, line := range strings.Split(content, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case parts[1] == "name=systemd":
			systemd = parts[2]
		default:
			paths = append(paths, parts[2])
		}
	}
	paths = append([]string{v2, systemd}, paths...)
	for _, p := range paths {
		if containerID == "" {
			containerID = containerIDFromPath(p)
		}
		if unit == "" {
			unit = unitFromPath(p)
		}
	}
	if containerID != "" {
		// Inside a container the unit is the runtime's scope, not the service.
		unit = ""
	}
	return containerID, unit
}

func containerIDFromPath(p string) string {
	segs := strings.Split(p, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		s := strings.TrimSuffix(segs[i], ".scope")
		if j := strings.LastIndexByte(s, '-'); j >= 0 {
			if strings.HasSuffix(s[:j], "conmon") {
				continue // cri-o's monitor process, not the container
			}
			s = s[j+1:]
		}
		if isContainerID(s) {
			return s
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// unitFromPath names the systemd service a process runs in. User sessions, user managers and
// init are not services.
func unitFromPath(p string) string {
	if strings.HasPrefix(p, "/user.slice") {
		return ""
	}
	segs := strings.Split(p, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if strings.HasSuffix(s, ".service") {
			name := strings.TrimSuffix(s, ".service")
			if strings.HasPrefix(name, "user@") {
				return ""
			}
			return name
		}
	}
	return ""
}
