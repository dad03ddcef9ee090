package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/netintel/netintelreceiver/internal/identity"
)

// The subset of the Kubernetes object model these manifests use. Only the
// fields the checks read are declared; the rest of each document is parsed
// (so syntax errors fail) and ignored.

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type typeMeta struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

type configMap struct {
	Metadata objectMeta        `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type workload struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName string      `yaml:"serviceAccountName"`
	HostPID            bool        `yaml:"hostPID"`
	HostNetwork        bool        `yaml:"hostNetwork"`
	Containers         []container `yaml:"containers"`
	Volumes            []volume    `yaml:"volumes"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	Args            []string         `yaml:"args"`
	Env             []envVar         `yaml:"env"`
	Ports           []containerPort  `yaml:"ports"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	Resources       resources        `yaml:"resources"`
	SecurityContext *securityContext `yaml:"securityContext"`
	VolumeMounts    []volumeMount    `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		// Port is a number or the name of a container port.
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type resources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type securityContext struct {
	Privileged               *bool `yaml:"privileged"`
	RunAsUser                *int  `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	Capabilities             *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
}

type service struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type policyRule struct {
	APIGroups []string `yaml:"apiGroups"`
	Resources []string `yaml:"resources"`
	Verbs     []string `yaml:"verbs"`
}

type clusterRole struct {
	Metadata objectMeta   `yaml:"metadata"`
	Rules    []policyRule `yaml:"rules"`
}

type roleBinding struct {
	Metadata objectMeta `yaml:"metadata"`
	Subjects []struct {
		Kind      string `yaml:"kind"`
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"subjects"`
	RoleRef struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	} `yaml:"roleRef"`
}

// document is one YAML document of a file under deploy/.
type document struct {
	file  string // relative to deploy/
	index int    // position in a multi-document file
	node  *yaml.Node
	meta  typeMeta
}

func (d document) String() string {
	return fmt.Sprintf("%s#%d (%s %s)", d.file, d.index, d.meta.Kind, d.meta.Metadata.Name)
}

// isPatch: documents under patches/ are strategic-merge patches applied with
// `kubectl patch`, not objects of their own.
func (d document) isPatch() bool { return strings.HasPrefix(d.file, "kubernetes/patches/") }

func (d document) decode(t *testing.T, out any) {
	t.Helper()
	if err := d.node.Decode(out); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
}

// readDocuments parses every YAML document of every *.yaml / *.yml file under
// root. A syntax error anywhere fails the test.
func readDocuments(t *testing.T, root string) []document {
	t.Helper()
	var docs []document
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for i := 0; ; i++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: document %d: %w", rel, i, err)
			}
			if node.Kind == 0 || (len(node.Content) == 1 && node.Content[0].Tag == "!!null") {
				continue // empty document, e.g. after a trailing ---
			}
			doc := document{file: filepath.ToSlash(rel), index: i, node: &node}
			if err := node.Decode(&doc.meta); err != nil {
				return fmt.Errorf("%s: document %d: %w", rel, i, err)
			}
			docs = append(docs, doc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("no YAML documents under %s", root)
	}
	return docs
}

// manifests are the documents that are Kubernetes objects (they have a kind)
// and are not patches.
func manifests(t *testing.T) []document {
	t.Helper()
	var out []document
	for _, d := range readDocuments(t, ".") {
		if d.meta.Kind != "" && !d.isPatch() {
			out = append(out, d)
		}
	}
	return out
}

func findObject(t *testing.T, docs []document, kind, name string, out any) document {
	t.Helper()
	for _, d := range docs {
		if d.meta.Kind == kind && d.meta.Metadata.Name == name {
			d.decode(t, out)
			return d
		}
	}
	t.Fatalf("no %s named %q under deploy/", kind, name)
	return document{}
}

const (
	namespace     = "netintel"
	nodeDaemonSet = "otelcol-netintel"
	gatewayName   = "netintel-gateway"
	healthPort    = 13133
	otlpGRPCPort  = 4317
)

// clusterScoped are the kinds that take no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// knownAPIVersions is every kind these manifests may use, with its API group
// version: a typo (apps/v1beta2, DaemonSets) fails here, not at kubectl apply.
var knownAPIVersions = map[string]string{
	"Namespace":          "v1",
	"ServiceAccount":     "v1",
	"ConfigMap":          "v1",
	"Service":            "v1",
	"DaemonSet":          "apps/v1",
	"Deployment":         "apps/v1",
	"ClusterRole":        "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
}

func TestEveryDocumentIsAKnownObjectOrACollectorConfig(t *testing.T) {
	seen := map[string]string{}
	for _, d := range readDocuments(t, ".") {
		if d.meta.Kind == "" {
			// Outside Kubernetes objects, only collector configurations live here.
			var cfg collectorConfig
			d.decode(t, &cfg)
			if len(cfg.Service.Pipelines) == 0 {
				t.Errorf("%s: neither a Kubernetes object (no kind) nor a collector config (no service.pipelines)", d)
			}
			continue
		}
		want, ok := knownAPIVersions[d.meta.Kind]
		if !ok {
			t.Errorf("%s: kind %q is not one deploy/ is expected to contain", d, d.meta.Kind)
			continue
		}
		if d.meta.APIVersion != want {
			t.Errorf("%s: apiVersion %q, want %q", d, d.meta.APIVersion, want)
		}
		if d.meta.Metadata.Name == "" {
			t.Errorf("%s: metadata.name is empty", d)
		}
		if d.isPatch() {
			continue
		}
		if clusterScoped[d.meta.Kind] {
			if d.meta.Metadata.Namespace != "" {
				t.Errorf("%s: cluster-scoped %s has namespace %q", d, d.meta.Kind, d.meta.Metadata.Namespace)
			}
		} else if d.meta.Metadata.Namespace != namespace {
			t.Errorf("%s: namespace %q, want %q (everything netintel runs lives in one namespace)", d, d.meta.Metadata.Namespace, namespace)
		}
		key := d.meta.Kind + "/" + d.meta.Metadata.Namespace + "/" + d.meta.Metadata.Name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s is also defined in %s", d, key, prev)
		}
		seen[key] = d.String()
	}
	if _, ok := seen["Namespace//"+namespace]; !ok {
		t.Errorf("no Namespace %q: kubectl apply -f deploy/kubernetes would fail on every namespaced object", namespace)
	}
}

func nodeCollector(t *testing.T, docs []document) (workload, container) {
	t.Helper()
	var ds workload
	findObject(t, docs, "DaemonSet", nodeDaemonSet, &ds)
	if n := len(ds.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("DaemonSet %s: %d containers, want 1", nodeDaemonSet, n)
	}
	return ds, ds.Spec.Template.Spec.Containers[0]
}

func TestDaemonSetHasWhatTheKernelSideNeeds(t *testing.T) {
	docs := manifests(t)
	ds, c := nodeCollector(t, docs)
	pod := ds.Spec.Template.Spec

	if !pod.HostPID {
		t.Error("hostPID must be true: process attribution reads /proc/<pid> of every process on the node")
	}
	if pod.HostNetwork {
		t.Error("hostNetwork is not needed (tracepoints see every network namespace) and would take port 13133 on the node")
	}
	if !labelsMatch(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not match the pod template labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels)
	}

	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container has no securityContext.capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged is the documented fallback (patches/privileged.yaml), not the default")
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities.drop = %v, want [ALL]", sc.Capabilities.Drop)
	}
	for _, capability := range []string{"BPF", "PERFMON"} {
		if !slices.Contains(sc.Capabilities.Add, capability) {
			t.Errorf("capabilities.add lacks %s (has %v)", capability, sc.Capabilities.Add)
		}
	}
	for _, capability := range sc.Capabilities.Add {
		switch strings.TrimPrefix(capability, "CAP_") {
		case "SYS_ADMIN":
			t.Error("SYS_ADMIN belongs only in the privileged fallback")
		case "NET_ADMIN", "SYS_RESOURCE":
			// The capture's TestKernelLeastPrivilege shows CAP_BPF and CAP_PERFMON suffice on
			// every kernel of the matrix.
			t.Errorf("%s is not needed on the tested kernels; least privilege leaves it out", capability)
		}
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("runAsUser must be 0: Kubernetes gives added capabilities to root only (no ambient capabilities)")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}

	// Host paths the receiver reads, each mounted from the host path of the
	// same name (proc under /host).
	wantMounts := []struct {
		hostPath, mountPath string
		readOnly            bool
	}{
		{"/sys/kernel/tracing", "/sys/kernel/tracing", true},
		{"/sys/fs/bpf", "/sys/fs/bpf", false},
		{"/proc", "/host/proc", true},
		{"/sys/kernel/btf", "/sys/kernel/btf", true},
		{"/sys/fs/cgroup", "/host/sys/fs/cgroup", true},
	}
	volumes := map[string]volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, want := range wantMounts {
		found := false
		for _, m := range c.VolumeMounts {
			v, ok := volumes[m.Name]
			if !ok || v.HostPath == nil || v.HostPath.Path != want.hostPath {
				continue
			}
			found = true
			if m.MountPath != want.mountPath {
				t.Errorf("host %s mounted at %s, want %s", want.hostPath, m.MountPath, want.mountPath)
			}
			if m.ReadOnly != want.readOnly {
				t.Errorf("host %s: readOnly = %v, want %v", want.hostPath, m.ReadOnly, want.readOnly)
			}
		}
		if !found {
			t.Errorf("no mount of host path %s", want.hostPath)
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("volumeMount %q refers to no volume", m.Name)
		}
	}

	for name, p := range map[string]*probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on the health_check extension", name)
			continue
		}
		if port := resolvePort(c, p.HTTPGet.Port); port != healthPort {
			t.Errorf("%s: port %q resolves to %d, want %d (health_check)", name, p.HTTPGet.Port, port, healthPort)
		}
	}

	for _, key := range []string{"cpu", "memory"} {
		if c.Resources.Requests[key] == "" || c.Resources.Limits[key] == "" {
			t.Errorf("resources: %s needs both a request and a limit (requests %v, limits %v)", key, c.Resources.Requests, c.Resources.Limits)
		}
	}

	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["K8S_NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Error("env K8S_NODE_NAME must come from fieldRef spec.nodeName (host.name, k8s_attributes node filter)")
	}
	if env["GOMEMLIMIT"].Value == "" {
		t.Error("env GOMEMLIMIT must be set below the memory limit")
	}
}

func TestPrivilegedPatchTargetsTheDaemonSetContainer(t *testing.T) {
	docs := manifests(t)
	_, c := nodeCollector(t, docs)
	var patches []document
	for _, d := range readDocuments(t, ".") {
		if d.isPatch() {
			patches = append(patches, d)
		}
	}
	if len(patches) != 1 {
		t.Fatalf("want exactly one patch (privileged fallback), found %d", len(patches))
	}
	var patch workload
	patches[0].decode(t, &patch)
	if patches[0].meta.Kind != "DaemonSet" || patch.Metadata.Name != nodeDaemonSet || patch.Metadata.Namespace != namespace {
		t.Fatalf("%s: must patch DaemonSet %s/%s", patches[0], namespace, nodeDaemonSet)
	}
	pc := patch.Spec.Template.Spec.Containers
	// Strategic merge matches containers by name: a renamed container would
	// add a second, broken container instead of patching the collector.
	if len(pc) != 1 || pc[0].Name != c.Name {
		t.Fatalf("%s: must patch container %q", patches[0], c.Name)
	}
	if sc := pc[0].SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("%s: does not set privileged: true", patches[0])
	}
}

func TestRBACGrantsReadOnlyWhatK8sAttributesNeeds(t *testing.T) {
	docs := manifests(t)
	ds, _ := nodeCollector(t, docs)
	saName := ds.Spec.Template.Spec.ServiceAccountName
	if saName == "" {
		t.Fatal("DaemonSet sets no serviceAccountName: k8s_attributes would run as default")
	}
	var sa struct{}
	findObject(t, docs, "ServiceAccount", saName, &sa)

	var bindings []roleBinding
	for _, d := range docs {
		if d.meta.Kind != "ClusterRoleBinding" {
			continue
		}
		var b roleBinding
		d.decode(t, &b)
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == saName && s.Namespace == namespace {
				bindings = append(bindings, b)
			}
		}
	}
	if len(bindings) != 1 {
		t.Fatalf("want one ClusterRoleBinding for ServiceAccount %s/%s, found %d", namespace, saName, len(bindings))
	}
	ref := bindings[0].RoleRef
	if ref.Kind != "ClusterRole" || ref.APIGroup != "rbac.authorization.k8s.io" {
		t.Fatalf("roleRef %+v is not a ClusterRole", ref)
	}
	var role clusterRole
	findObject(t, docs, "ClusterRole", ref.Name, &role)

	readVerbs := []string{"get", "list", "watch"}
	for _, want := range []struct{ group, resource string }{
		{"", "pods"}, {"", "namespaces"}, {"apps", "replicasets"}, {"apps", "deployments"},
	} {
		if !grants(role.Rules, want.group, want.resource, readVerbs) {
			t.Errorf("ClusterRole %s: no get/list/watch on %q %s", role.Metadata.Name, want.group, want.resource)
		}
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if !slices.Contains(readVerbs, v) {
				t.Errorf("ClusterRole %s grants %q on %v: the collector only reads", role.Metadata.Name, v, r.Resources)
			}
		}
	}
}

func grants(rules []policyRule, group, resource string, verbs []string) bool {
	for _, r := range rules {
		if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, resource) {
			continue
		}
		all := true
		for _, v := range verbs {
			all = all && slices.Contains(r.Verbs, v)
		}
		if all {
			return true
		}
	}
	return false
}

func TestGatewayServiceReachesTheGatewayPods(t *testing.T) {
	docs := manifests(t)
	var gw workload
	findObject(t, docs, "Deployment", gatewayName, &gw)
	var svc service
	findObject(t, docs, "Service", gatewayName, &svc)

	if !labelsMatch(svc.Spec.Selector, gw.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector %v does not select the gateway pods %v", svc.Spec.Selector, gw.Spec.Template.Metadata.Labels)
	}
	if !labelsMatch(gw.Spec.Selector.MatchLabels, gw.Spec.Template.Metadata.Labels) {
		t.Errorf("Deployment selector %v does not match its pod labels", gw.Spec.Selector.MatchLabels)
	}
	if len(gw.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("gateway: want one container")
	}
	c := gw.Spec.Template.Spec.Containers[0]
	hasOTLP := false
	for _, p := range svc.Spec.Ports {
		target := resolvePort(c, p.TargetPort)
		if target == 0 {
			t.Errorf("Service port %s: targetPort %q is no container port of the gateway", p.Name, p.TargetPort)
		}
		hasOTLP = hasOTLP || (p.Port == otlpGRPCPort && target == otlpGRPCPort)
	}
	if !hasOTLP {
		t.Errorf("Service %s does not expose OTLP/gRPC on %d", gatewayName, otlpGRPCPort)
	}
	for name, p := range map[string]*probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || resolvePort(c, p.HTTPGet.Port) != healthPort {
			t.Errorf("gateway %s: want httpGet on the health_check port %d", name, healthPort)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged != nil && *sc.Privileged {
		t.Error("the gateway only receives OTLP: it must not be privileged")
	}
}

// resolvePort turns a probe or Service target port (a number or a port name)
// into the container port number, or 0.
func resolvePort(c container, port string) int {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return p.ContainerPort
		}
	}
	return 0
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestDaemonSetMountsWhatNamingReads: the ConfigMap's naming.host_root and the DaemonSet's
// mounts agree, each path naming reads (internal/identity) is mounted read-only from the
// host path of the same name, and no runtime's API socket is among them.
func TestDaemonSetMountsWhatNamingReads(t *testing.T) {
	docs := manifests(t)
	ds, c := nodeCollector(t, docs)
	var cm configMap
	findObject(t, docs, "ConfigMap", "otelcol-netintel-config", &cm)
	var cfg struct {
		Receivers struct {
			NetIntel struct {
				Naming struct {
					HostRoot string `yaml:"host_root"`
				} `yaml:"naming"`
			} `yaml:"net_intel"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("ConfigMap config.yaml: %v", err)
	}
	hostRoot := cfg.Receivers.NetIntel.Naming.HostRoot
	if hostRoot != "/host" {
		t.Fatalf("net_intel naming.host_root = %q, want /host (where the DaemonSet mounts the host paths)", hostRoot)
	}

	volumes := map[string]volume{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, hostPath := range []string{
		"/proc",
		"/sys/fs/cgroup",
		identity.DefaultContainerdState[0],
		identity.DefaultCRIOState[0],
		identity.DefaultDockerDataRoot + "/containers",
	} {
		want := hostRoot + hostPath
		found := false
		for _, m := range c.VolumeMounts {
			if m.MountPath != want {
				continue
			}
			found = true
			if v := volumes[m.Name]; v.HostPath == nil || v.HostPath.Path != hostPath {
				t.Errorf("%s is not the host's %s (volume %q: %+v)", want, hostPath, m.Name, v.HostPath)
			}
			if !m.ReadOnly {
				t.Errorf("%s must be mounted read-only", want)
			}
		}
		if !found {
			t.Errorf("no mount at %s: naming reads the host's %s there", want, hostPath)
		}
	}
	for _, v := range volumes {
		if v.HostPath == nil {
			continue
		}
		p := v.HostPath.Path
		if strings.HasSuffix(p, ".sock") || p == "/run/containerd" || p == "/var/run" || p == "/run" || p == "/run/crio" {
			t.Errorf("volume %q mounts %s: a container runtime's API socket is root on the node, and naming needs only its state files", v.Name, p)
		}
	}
}
