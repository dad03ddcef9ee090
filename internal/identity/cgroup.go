package identity

import "strings"

// cgroupRef is what a cgroup path says about the processes in it: the container they run in,
// or the systemd unit.
type cgroupRef struct {
	containerID string
	unit        string
}

// cgroup is one cgroup of the node as naming sees it, shared by every process in it: the
// container it holds, with what the container's runtime says about it, or the systemd unit.
type cgroup struct {
	cgroupRef
	container *container // nil outside containers; a miss (no runtime state) has no state file
}

// parseCgroup extracts a container id and a systemd unit name from /proc/<pid>/cgroup.
// The cgroup v2 line ("0::/path") is preferred; on hybrid hosts the name=systemd line and
// then any other line are tried. fromV2 tells the answer came from the v2 line: then the
// cgroup id the kernel reports for the process (bpf_get_current_cgroup_id) is this cgroup,
// and names every process seen with it, even one that has exited since.
//
// Container paths seen in practice:
//
//	/docker/<id>                                     docker, cgroupfs driver
//	/system.slice/docker-<id>.scope                  docker, systemd driver
//	/kubepods/burstable/pod<uid>/<id>                kubelet, cgroupfs driver
//	/kubepods.slice/.../cri-containerd-<id>.scope    containerd, systemd driver
//	/kubepods.slice/.../crio-<id>.scope              cri-o
//	/machine.slice/libpod-<id>.scope                 podman
//	/../../kubepods.slice/...                        the same, read from a private cgroup namespace
func parseCgroup(content string) (ref cgroupRef, fromV2 bool) {
	var v2, systemd string
	var others []string
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
			others = append(others, parts[2])
		}
	}
	v2ref := refFromPath(v2)
	if v2ref.containerID != "" {
		return v2ref, true
	}
	// A v1 hierarchy may know a container the v2 line does not (a runtime that leaves the
	// unified hierarchy alone on a hybrid host): the container wins over any unit.
	for _, p := range append([]string{systemd}, others...) {
		if id := containerIDFromPath(p); id != "" {
			return cgroupRef{containerID: id}, false
		}
	}
	if v2ref.unit != "" {
		return v2ref, true
	}
	for _, p := range append([]string{systemd}, others...) {
		if u := unitFromPath(p); u != "" {
			return cgroupRef{unit: u}, false
		}
	}
	return cgroupRef{}, v2 != ""
}

// refFromPath reads one cgroup path. Inside a container the unit is the runtime's scope,
// not the service, so a container clears it.
func refFromPath(p string) cgroupRef {
	if id := containerIDFromPath(p); id != "" {
		return cgroupRef{containerID: id}
	}
	return cgroupRef{unit: unitFromPath(p)}
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
	p = strings.TrimLeft(p, "./")
	if strings.HasPrefix(p, "user.slice") {
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
