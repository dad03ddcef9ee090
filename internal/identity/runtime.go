package identity

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxStateFile bounds the read of one runtime state file: an OCI config.json carries the
// seccomp profile and every mount, tens of KiB; anything past this is not a config.
const maxStateFile = 1 << 20

// CRI annotations containerd writes into each container's OCI config.
const (
	criContainerName    = "io.kubernetes.cri.container-name"
	criSandboxName      = "io.kubernetes.cri.sandbox-name"
	criSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	criSandboxUID       = "io.kubernetes.cri.sandbox-uid"
)

// The keys CRI-O writes as annotations, and cri-dockerd (Kubernetes on Docker) as labels.
const (
	kubePodName       = "io.kubernetes.pod.name"
	kubePodNamespace  = "io.kubernetes.pod.namespace"
	kubePodUID        = "io.kubernetes.pod.uid"
	kubeContainerName = "io.kubernetes.container.name"
)

// Where the runtimes keep their state on a node, under the host root. Exported so that the
// DaemonSet's manifest test checks its mounts against what is read; never changed.
var (
	// DefaultContainerdState: containerd's runc v2 shim bundles,
	// <dir>/<namespace>/<id>/config.json. Docker ≥ 20.10 uses the system containerd when
	// one runs (namespace "moby"), else its own under /run/docker; k3s runs its own under
	// /run/k3s.
	DefaultContainerdState = []string{
		"/run/containerd/io.containerd.runtime.v2.task",
		"/run/docker/containerd/daemon/io.containerd.runtime.v2.task",
		"/run/k3s/containerd/io.containerd.runtime.v2.task",
	}
	// DefaultCRIOState: CRI-O (containers/storage), <dir>/<id>/userdata/config.json.
	DefaultCRIOState = []string{
		"/run/containers/storage/overlay-containers",
		"/var/lib/containers/storage/overlay-containers",
	}
)

// DefaultDockerDataRoot is dockerd's default --data-root.
const DefaultDockerDataRoot = "/var/lib/docker"

// pod is the Kubernetes pod a container belongs to, as its runtime recorded it.
type pod struct {
	namespace, name, uid, container string
}

// container is what a container runtime on the node keeps about one container.
type container struct {
	id       string
	name     string // Docker's container name, without the leading "/"
	envName  string // OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) it was started with
	pod      pod
	workload string // service name of the pod's workload (see workloadName)
	state    string // the file it was read from; "" for a container no runtime described (a miss)
	gone     bool   // its state file was removed: the container was deleted
}

// runtimes reads the container runtimes' own state, read-only: no socket, no API server.
type runtimes struct {
	docker     []string // <data-root>/containers: <id>/config.v2.json
	containerd []string
	crio       []string
}

func newRuntimes(hostRoot, dockerDataRoot string, containerd, crio []string) runtimes {
	under := func(paths []string) []string {
		out := make([]string, 0, len(paths))
		for _, p := range paths {
			out = append(out, filepath.Join(hostRoot, p))
		}
		return out
	}
	if dockerDataRoot == "" {
		dockerDataRoot = DefaultDockerDataRoot
	}
	if containerd == nil {
		containerd = under(DefaultContainerdState)
	}
	if crio == nil {
		crio = under(DefaultCRIOState)
	}
	return runtimes{
		docker:     []string{filepath.Join(hostRoot, dockerDataRoot, "containers")},
		containerd: containerd,
		crio:       crio,
	}
}

// lookup finds container id in the runtimes' state: Docker's own first (it knows the
// container's name, which its containerd bundle does not), then containerd's bundles in
// every namespace, then CRI-O's. nil when none describes it.
func (rt *runtimes) lookup(id string) *container {
	for _, dir := range rt.docker {
		if c := readDockerConfig(filepath.Join(dir, id, "config.v2.json"), id); c != nil {
			return c
		}
	}
	for _, dir := range rt.containerd {
		namespaces, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, ns := range namespaces {
			if c := readOCIConfig(filepath.Join(dir, ns.Name(), id, "config.json"), id); c != nil {
				return c
			}
		}
	}
	for _, dir := range rt.crio {
		if c := readOCIConfig(filepath.Join(dir, id, "userdata", "config.json"), id); c != nil {
			return c
		}
	}
	return nil
}

// readStateFile decodes one bounded JSON state file into v.
func readStateFile(path string, v any) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return json.NewDecoder(io.LimitReader(f, maxStateFile)).Decode(v) == nil
}

// ociSpec is the part of an OCI runtime config.json naming needs.
type ociSpec struct {
	Process *struct {
		Env []string `json:"env"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

func readOCIConfig(path, id string) *container {
	var spec ociSpec
	if !readStateFile(path, &spec) {
		return nil
	}
	c := &container{id: id, state: path}
	if spec.Process != nil {
		c.envName = serviceNameFromEnv(spec.Process.Env)
	}
	a := spec.Annotations
	c.pod = pod{namespace: a[criSandboxNamespace], name: a[criSandboxName], uid: a[criSandboxUID], container: a[criContainerName]}
	if c.pod.name == "" {
		c.pod = podFromKubeKeys(a)
	}
	c.workload = workloadName(c.pod.name)
	return c
}

// dockerConfig is the part of Docker's config.v2.json naming needs.
type dockerConfig struct {
	Name   string `json:"Name"`
	Config struct {
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

func readDockerConfig(path, id string) *container {
	var cfg dockerConfig
	if !readStateFile(path, &cfg) {
		return nil
	}
	c := &container{
		id:      id,
		name:    strings.TrimPrefix(cfg.Name, "/"),
		envName: serviceNameFromEnv(cfg.Config.Env),
		pod:     podFromKubeKeys(cfg.Config.Labels),
		state:   path,
	}
	c.workload = workloadName(c.pod.name)
	return c
}

func podFromKubeKeys(m map[string]string) pod {
	return pod{namespace: m[kubePodNamespace], name: m[kubePodName], uid: m[kubePodUID], container: m[kubeContainerName]}
}
