package deploy

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// collectorConfig is an OpenTelemetry Collector configuration as far as its
// wiring goes: which components are defined and how pipelines use them. The
// settings of each component stay YAML nodes, passed through untouched to
// `otelcol-netintel validate`, which is what checks them.
type collectorConfig struct {
	Extensions map[string]yaml.Node `yaml:"extensions,omitempty"`
	Receivers  map[string]yaml.Node `yaml:"receivers"`
	Processors map[string]yaml.Node `yaml:"processors,omitempty"`
	Exporters  map[string]yaml.Node `yaml:"exporters"`
	Connectors map[string]yaml.Node `yaml:"connectors,omitempty"`
	Service    serviceConfig        `yaml:"service"`
}

type serviceConfig struct {
	Extensions []string                   `yaml:"extensions,omitempty"`
	Pipelines  map[string]*pipelineConfig `yaml:"pipelines"`
	Telemetry  *yaml.Node                 `yaml:"telemetry,omitempty"`
}

type pipelineConfig struct {
	Receivers  []string `yaml:"receivers"`
	Processors []string `yaml:"processors,omitempty"`
	Exporters  []string `yaml:"exporters"`
}

// componentType is the type part of a component id ("otlp_grpc/gateway" →
// "otlp_grpc"), which is what a distribution provides.
func componentType(id string) string {
	typ, _, _ := strings.Cut(id, "/")
	return typ
}

// types lists every component type the configuration defines.
func (c collectorConfig) types() []string {
	set := map[string]bool{}
	for _, section := range []map[string]yaml.Node{c.Extensions, c.Receivers, c.Processors, c.Exporters, c.Connectors} {
		for id := range section {
			set[componentType(id)] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// without returns a copy of the configuration with every component of the
// given types removed from the definitions, the pipelines and the service
// extensions. A pipeline left with no receiver or no exporter is dropped.
// This is how the gateway configuration, written for otelcol-contrib, is
// validated with the netintel distribution: only the components it lacks are
// taken out, and the tests say which.
func (c collectorConfig) without(types map[string]bool) collectorConfig {
	keep := func(ids []string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return types[componentType(id)] })
	}
	section := func(m map[string]yaml.Node) map[string]yaml.Node {
		out := map[string]yaml.Node{}
		for id, n := range m {
			if !types[componentType(id)] {
				out[id] = n
			}
		}
		return out
	}
	out := collectorConfig{
		Extensions: section(c.Extensions),
		Receivers:  section(c.Receivers),
		Processors: section(c.Processors),
		Exporters:  section(c.Exporters),
		Connectors: section(c.Connectors),
		Service: serviceConfig{
			Extensions: keep(c.Service.Extensions),
			Pipelines:  map[string]*pipelineConfig{},
			Telemetry:  c.Service.Telemetry,
		},
	}
	for name, p := range c.Service.Pipelines {
		q := &pipelineConfig{Receivers: keep(p.Receivers), Processors: keep(p.Processors), Exporters: keep(p.Exporters)}
		if len(q.Receivers) > 0 && len(q.Exporters) > 0 {
			out.Service.Pipelines[name] = q
		}
	}
	return out
}

// wiringErrors reports references to undefined components, defined
// components no pipeline uses, and connectors that are not both an exporter
// of one pipeline and a receiver of another.
func (c collectorConfig) wiringErrors() []string {
	var errs []string
	used := map[string]bool{}
	connectorAs := map[string]map[string]bool{}
	check := func(where, id string, defined ...map[string]yaml.Node) {
		used[id] = true
		for _, m := range defined {
			if _, ok := m[id]; ok {
				if _, isConnector := c.Connectors[id]; isConnector {
					if connectorAs[id] == nil {
						connectorAs[id] = map[string]bool{}
					}
					connectorAs[id][where] = true
				}
				return
			}
		}
		errs = append(errs, fmt.Sprintf("%s references %q, which is not defined", where, id))
	}
	if len(c.Service.Pipelines) == 0 {
		errs = append(errs, "service.pipelines is empty")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Service.Pipelines)) {
		p := c.Service.Pipelines[name]
		if len(p.Receivers) == 0 || len(p.Exporters) == 0 {
			errs = append(errs, fmt.Sprintf("pipeline %s needs at least one receiver and one exporter", name))
		}
		for _, id := range p.Receivers {
			check("receiver", id, c.Receivers, c.Connectors)
		}
		for _, id := range p.Processors {
			check("processor", id, c.Processors)
		}
		for _, id := range p.Exporters {
			check("exporter", id, c.Exporters, c.Connectors)
		}
		if i := slices.IndexFunc(p.Processors, func(id string) bool { return componentType(id) == "memory_limiter" }); i > 0 {
			errs = append(errs, fmt.Sprintf("pipeline %s: memory_limiter is processor %d; it must come first to refuse data before anything else holds it", name, i+1))
		}
	}
	for _, id := range c.Service.Extensions {
		used[id] = true
		if _, ok := c.Extensions[id]; !ok {
			errs = append(errs, fmt.Sprintf("service.extensions references %q, which is not defined", id))
		}
	}
	for _, section := range []map[string]yaml.Node{c.Extensions, c.Receivers, c.Processors, c.Exporters, c.Connectors} {
		for _, id := range slices.Sorted(maps.Keys(section)) {
			if !used[id] {
				errs = append(errs, fmt.Sprintf("%q is defined but no pipeline uses it", id))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Connectors)) {
		if as := connectorAs[id]; !as["receiver"] || !as["exporter"] {
			errs = append(errs, fmt.Sprintf("connector %q must be an exporter of one pipeline and a receiver of another", id))
		}
	}
	return errs
}

// namedConfig is one collector configuration found under deploy/.
type namedConfig struct {
	name      string // where it lives, for messages
	configMap string // the ConfigMap holding it, "" for a plain file
	key       string // its key in the ConfigMap
	text      string
	config    collectorConfig
}

// collectorConfigs finds every collector configuration under deploy/: each
// *.yaml key of each ConfigMap, and every file that is not a Kubernetes object.
func collectorConfigs(t *testing.T) []namedConfig {
	t.Helper()
	var out []namedConfig
	for _, d := range readDocuments(t, ".") {
		switch {
		case d.meta.Kind == "ConfigMap":
			var cm configMap
			d.decode(t, &cm)
			for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
				if !strings.HasSuffix(key, ".yaml") {
					continue
				}
				nc := namedConfig{name: d.file + ":" + key, configMap: cm.Metadata.Name, key: key, text: cm.Data[key]}
				if err := yaml.Unmarshal([]byte(nc.text), &nc.config); err != nil {
					t.Fatalf("%s: %v", nc.name, err)
				}
				out = append(out, nc)
			}
		case d.meta.Kind == "":
			nc := namedConfig{name: d.file}
			d.decode(t, &nc.config)
			raw, err := yaml.Marshal(d.node)
			if err != nil {
				t.Fatal(err)
			}
			nc.text = string(raw)
			out = append(out, nc)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found %d collector configs under deploy/, want the node, gateway and image configs", len(out))
	}
	return out
}

func configByConfigMap(t *testing.T, configs []namedConfig, name string) namedConfig {
	t.Helper()
	for _, c := range configs {
		if c.configMap == name {
			return c
		}
	}
	t.Fatalf("no collector config in ConfigMap %s", name)
	return namedConfig{}
}

func TestCollectorConfigsAreWiredCompletely(t *testing.T) {
	for _, c := range collectorConfigs(t) {
		for _, err := range c.config.wiringErrors() {
			t.Errorf("%s: %s", c.name, err)
		}
	}
}

var envReference = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestWorkloadsProvideWhatTheirConfigsNeed ties each ConfigMap config to the
// pod that mounts it: the --config path, every ${env:...} it expands, and the
// health_check port the probes call.
func TestWorkloadsProvideWhatTheirConfigsNeed(t *testing.T) {
	docs := manifests(t)
	configs := collectorConfigs(t)
	mounted := 0
	for _, d := range docs {
		if d.meta.Kind != "DaemonSet" && d.meta.Kind != "Deployment" {
			continue
		}
		var w workload
		d.decode(t, &w)
		pod := w.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.ConfigMap == nil {
				continue
			}
			cfg := configByConfigMap(t, configs, v.ConfigMap.Name)
			mounted++
			for _, c := range pod.Containers {
				i := slices.IndexFunc(c.VolumeMounts, func(m volumeMount) bool { return m.Name == v.Name })
				if i < 0 {
					continue
				}
				wantArg := "--config=" + c.VolumeMounts[i].MountPath + "/" + cfg.key
				if !slices.Contains(c.Args, wantArg) {
					t.Errorf("%s: container %s args %v lack %s", d, c.Name, c.Args, wantArg)
				}
				for _, m := range envReference.FindAllStringSubmatch(cfg.text, -1) {
					if !slices.ContainsFunc(c.Env, func(e envVar) bool { return e.Name == m[1] }) {
						t.Errorf("%s: %s expands ${env:%s}, which container %s does not set", d, cfg.name, m[1], c.Name)
					}
				}
				var health struct {
					Endpoint string `yaml:"endpoint"`
				}
				n, ok := cfg.config.Extensions["health_check"]
				if !ok {
					t.Errorf("%s: no health_check extension for the probes", cfg.name)
					continue
				}
				if err := n.Decode(&health); err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(health.Endpoint, fmt.Sprintf(":%d", healthPort)) {
					t.Errorf("%s: health_check endpoint %q is not on port %d, where the probes look", cfg.name, health.Endpoint, healthPort)
				}
			}
		}
	}
	if mounted < 2 {
		t.Errorf("%d ConfigMap configs are mounted by a workload, want the node and gateway configs", mounted)
	}
}

func TestNodeConfigFeedsTheGatewayThroughK8sAttributes(t *testing.T) {
	docs := manifests(t)
	var ds workload
	findObject(t, docs, "DaemonSet", nodeDaemonSet, &ds)
	i := slices.IndexFunc(ds.Spec.Template.Spec.Volumes, func(v volume) bool { return v.ConfigMap != nil })
	if i < 0 {
		t.Fatal("DaemonSet mounts no ConfigMap")
	}
	node := configByConfigMap(t, collectorConfigs(t), ds.Spec.Template.Spec.Volumes[i].ConfigMap.Name)
	var svc service
	findObject(t, docs, "Service", gatewayName, &svc)
	gatewayAddress := fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc.Metadata.Name, svc.Metadata.Namespace, otlpGRPCPort)

	for _, signal := range []string{"logs", "traces", "metrics"} {
		p, ok := node.config.Service.Pipelines[signal]
		if !ok {
			t.Errorf("%s: no %s pipeline", node.name, signal)
			continue
		}
		if !slices.Contains(p.Receivers, "net_intel") {
			t.Errorf("%s: %s pipeline does not receive from net_intel", node.name, signal)
		}
		if !slices.ContainsFunc(p.Processors, func(id string) bool { return componentType(id) == "k8s_attributes" }) {
			t.Errorf("%s: %s pipeline has no k8s_attributes: pods and workloads would be missing", node.name, signal)
		}
		for _, id := range p.Exporters {
			if componentType(id) != "otlp_grpc" {
				continue
			}
			var exp struct {
				Endpoint string `yaml:"endpoint"`
			}
			n := node.config.Exporters[id]
			if err := n.Decode(&exp); err != nil {
				t.Fatal(err)
			}
			if exp.Endpoint != gatewayAddress {
				t.Errorf("%s: %s exports to %q, want the gateway Service %q", node.name, id, exp.Endpoint, gatewayAddress)
			}
		}
	}

	var k8s struct {
		Filter struct {
			NodeFromEnvVar string `yaml:"node_from_env_var"`
		} `yaml:"filter"`
		PodAssociation []struct {
			Sources []struct {
				From string `yaml:"from"`
				Name string `yaml:"name"`
			} `yaml:"sources"`
		} `yaml:"pod_association"`
	}
	n := node.config.Processors["k8s_attributes"]
	if err := n.Decode(&k8s); err != nil {
		t.Fatal(err)
	}
	if k8s.Filter.NodeFromEnvVar != "K8S_NODE_NAME" {
		t.Errorf("k8s_attributes must watch only its node's pods (filter.node_from_env_var: K8S_NODE_NAME), got %q", k8s.Filter.NodeFromEnvVar)
	}
	if len(k8s.PodAssociation) == 0 || len(k8s.PodAssociation[0].Sources) == 0 ||
		k8s.PodAssociation[0].Sources[0].Name != "container.id" {
		t.Error("k8s_attributes: the first pod association must be the container.id net_intel sets on every resource")
	}
	byUID := false
	for _, a := range k8s.PodAssociation {
		byUID = byUID || (len(a.Sources) == 1 && a.Sources[0].From == "resource_attribute" && a.Sources[0].Name == "k8s.pod.uid")
	}
	if !byUID {
		t.Error("k8s_attributes: no pod association by the k8s.pod.uid net_intel sets from the CRI annotations")
	}
}

// gatewayOnlyInContrib are the components of the gateway configuration that
// the netintel distribution does not contain (none today: the configuration
// targets the otelcol-contrib image, docs/kubernetes.md says so, and uses only
// components both have).
var gatewayOnlyInContrib = map[string]bool{}

// The gateway passes the nodes' exact service-graph series through and builds
// nothing from sampled spans that would count differently under the same names:
// no servicegraph connector (it would count every error span and a sample of the
// healthy ones, inflating failure ratios ~1/span_sampling times, as
// traces_service_graph_* like the nodes' series); span_metrics, which corrects for
// the sampling threshold each span carries, under names of its own.
func TestGatewayUsesExactOrSamplingAwareCounts(t *testing.T) {
	gw := configByConfigMap(t, collectorConfigs(t), "netintel-gateway-config")
	for id := range gw.config.Connectors {
		if componentType(id) == "servicegraph" {
			t.Errorf("%s: connector %s counts sampled spans as requests and emits traces_service_graph_* like the nodes", gw.name, id)
		}
	}
	traces, ok := gw.config.Service.Pipelines["traces"]
	if !ok || !slices.Contains(traces.Receivers, "otlp") {
		t.Fatalf("%s: want a traces pipeline receiving OTLP from the nodes", gw.name)
	}
	if !slices.Contains(traces.Exporters, "span_metrics") {
		t.Errorf("%s: traces pipeline does not feed span_metrics", gw.name)
	}
	fed := false
	for name, p := range gw.config.Service.Pipelines {
		if strings.HasPrefix(name, "metrics") && slices.Contains(p.Receivers, "span_metrics") && len(p.Exporters) > 0 {
			fed = true
		}
	}
	if !fed {
		t.Errorf("%s: no metrics pipeline exports what span_metrics produces", gw.name)
	}
	// The nodes' metrics (the exact service graph among them) reach the backend unchanged.
	metrics, ok := gw.config.Service.Pipelines["metrics"]
	if !ok || !slices.Contains(metrics.Receivers, "otlp") || !slices.Contains(metrics.Exporters, "otlp_grpc/backend") {
		t.Errorf("%s: the nodes' metrics must pass from otlp to the backend", gw.name)
	}
	for _, p := range metrics.Processors {
		if typ := componentType(p); typ != "memory_limiter" && typ != "batch" {
			t.Errorf("%s: metrics pipeline processor %s may change the nodes' exact series", gw.name, p)
		}
	}
	if !strings.Contains(gw.text, "${env:OTLP_BACKEND_ENDPOINT}") {
		t.Errorf("%s: the backend must be ${env:OTLP_BACKEND_ENDPOINT}", gw.name)
	}
	if errs := gw.config.wiringErrors(); len(errs) > 0 {
		t.Errorf("gateway config is incomplete: %v", errs)
	}
}

func TestWithoutDropsPipelinesLeftWithoutReceivers(t *testing.T) {
	cfg := collectorConfig{
		Receivers:  map[string]yaml.Node{"otlp": {}},
		Exporters:  map[string]yaml.Node{"debug": {}},
		Connectors: map[string]yaml.Node{"servicegraph": {}, "span_metrics": {}},
		Extensions: map[string]yaml.Node{"health_check": {}},
		Service: serviceConfig{
			Extensions: []string{"health_check"},
			Pipelines: map[string]*pipelineConfig{
				"traces":         {Receivers: []string{"otlp"}, Exporters: []string{"servicegraph", "span_metrics", "debug"}},
				"metrics/graph":  {Receivers: []string{"servicegraph"}, Exporters: []string{"debug"}},
				"metrics/spans":  {Receivers: []string{"servicegraph", "span_metrics"}, Exporters: []string{"debug"}},
				"logs/unchanged": {Receivers: []string{"otlp"}, Exporters: []string{"debug"}},
			},
		},
	}
	got := cfg.without(map[string]bool{"servicegraph": true, "health_check": true})

	if _, ok := got.Service.Pipelines["metrics/graph"]; ok {
		t.Error("metrics/graph only received from servicegraph and must be dropped")
	}
	if want := []string{"span_metrics"}; !slices.Equal(got.Service.Pipelines["metrics/spans"].Receivers, want) {
		t.Errorf("metrics/spans receivers = %v, want %v", got.Service.Pipelines["metrics/spans"].Receivers, want)
	}
	if want := []string{"span_metrics", "debug"}; !slices.Equal(got.Service.Pipelines["traces"].Exporters, want) {
		t.Errorf("traces exporters = %v, want %v", got.Service.Pipelines["traces"].Exporters, want)
	}
	if len(got.Service.Extensions) != 0 || len(got.Extensions) != 0 {
		t.Errorf("health_check still present: %v %v", got.Service.Extensions, got.Extensions)
	}
	if _, ok := got.Connectors["servicegraph"]; ok {
		t.Error("servicegraph connector definition kept")
	}
	// The original is untouched.
	if len(cfg.Service.Pipelines["traces"].Exporters) != 3 || len(cfg.Service.Pipelines) != 4 {
		t.Error("without modified its receiver")
	}
	if errs := got.wiringErrors(); len(errs) != 0 {
		t.Errorf("result is not a complete config: %v", errs)
	}
}

func TestWiringErrorsFindBrokenReferences(t *testing.T) {
	cfg := collectorConfig{
		Receivers:  map[string]yaml.Node{"net_intel": {}},
		Processors: map[string]yaml.Node{"batch": {}, "memory_limiter": {}},
		Exporters:  map[string]yaml.Node{"debug": {}, "unused": {}},
		Service: serviceConfig{Pipelines: map[string]*pipelineConfig{
			"traces": {Receivers: []string{"net_intel"}, Processors: []string{"batch", "memory_limiter"}, Exporters: []string{"debug", "otlp_grpc/missing"}},
		}},
	}
	errs := strings.Join(cfg.wiringErrors(), "\n")
	for _, want := range []string{`"otlp_grpc/missing", which is not defined`, `"unused" is defined but no pipeline uses it`, "memory_limiter is processor 2"} {
		if !strings.Contains(errs, want) {
			t.Errorf("wiringErrors lacks %q; got:\n%s", want, errs)
		}
	}
}

// --- validation with the built distribution -------------------------------

// distBinary is the collector `make dist` builds; NETINTEL_DIST overrides it.
func distBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("NETINTEL_DIST")
	if bin == "" {
		bin = filepath.Join("..", "dist", "otelcol-netintel")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must validate the deploy configs (make test builds it with make dist): %v", bin, err)
		}
		t.Skipf("%s not built (make dist); collector configs are checked structurally only", bin)
	}
	return bin
}

// placeholderEnv gives each variable the configs expand a value of the right
// shape, as the pods' env would.
var placeholderEnv = map[string]string{
	"K8S_NODE_NAME":         "node-a",
	"K8S_POD_IP":            "127.0.0.1",
	"OTLP_BACKEND_ENDPOINT": "127.0.0.1:4317",
}

func runDist(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = os.Environ()
	for k, v := range placeholderEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// distComponents lists the component types the distribution contains.
func distComponents(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := runDist(t, bin, "components")
	if err != nil {
		t.Fatalf("%s components: %v\n%s", bin, err, out)
	}
	var listing struct {
		Receivers, Processors, Exporters, Connectors, Extensions []struct {
			Name string `yaml:"name"`
		}
	}
	if err := yaml.Unmarshal([]byte(out), &listing); err != nil {
		t.Fatalf("%s components: %v\n%s", bin, err, out)
	}
	set := map[string]bool{}
	for _, kind := range [][]struct {
		Name string `yaml:"name"`
	}{listing.Receivers, listing.Processors, listing.Exporters, listing.Connectors, listing.Extensions} {
		for _, c := range kind {
			set[c.Name] = true
		}
	}
	if !set["net_intel"] {
		t.Fatalf("%s components does not list net_intel:\n%s", bin, out)
	}
	return set
}

func validate(t *testing.T, bin string, cfg collectorConfig) (string, error) {
	t.Helper()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return runDist(t, bin, "validate", "--config="+path)
}

func TestDistributionValidatesEveryCollectorConfig(t *testing.T) {
	bin := distBinary(t)
	have := distComponents(t, bin)
	for _, c := range collectorConfigs(t) {
		t.Run(c.name, func(t *testing.T) {
			allowedOutside := map[string]bool{}
			if c.configMap == "netintel-gateway-config" {
				allowedOutside = gatewayOnlyInContrib
			}
			outside := map[string]bool{}
			for _, typ := range c.config.types() {
				if have[typ] {
					continue
				}
				if !allowedOutside[typ] {
					t.Errorf("%s uses %q, which %s does not contain: add it to builder-config.yaml (deploy/ocb/README.md has the lines)", c.name, typ, bin)
				}
				outside[typ] = true
			}
			if t.Failed() {
				return
			}
			if len(outside) > 0 {
				t.Logf("validating without %v (otelcol-contrib only)", slices.Sorted(maps.Keys(outside)))
			}
			if out, err := validate(t, bin, c.config.without(outside)); err != nil {
				t.Errorf("%s validate: %v\n%s", bin, err, out)
			}
		})
	}
}

// TestDistributionRejectsAMistakeInTheNodeConfig makes sure the validation
// above can fail: an unknown key in the node's exporter must be refused.
func TestDistributionRejectsAMistakeInTheNodeConfig(t *testing.T) {
	bin := distBinary(t)
	have := distComponents(t, bin)
	node := configByConfigMap(t, collectorConfigs(t), "otelcol-netintel-config")
	// Only the exporter matters here: leave out whatever the distribution
	// lacks, so the one failure is the planted key.
	outside := map[string]bool{}
	for _, typ := range node.config.types() {
		outside[typ] = !have[typ]
	}
	broken := node.config.without(outside)
	exp := broken.Exporters["otlp_grpc/gateway"]
	exp.Content = append(slices.Clone(exp.Content),
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "no_such_option"},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
	broken.Exporters["otlp_grpc/gateway"] = exp
	out, err := validate(t, bin, broken)
	if err == nil {
		t.Fatalf("validate accepted an unknown exporter key:\n%s", out)
	}
	if !strings.Contains(out, "no_such_option") {
		t.Errorf("validate failed without naming the bad key:\n%s", out)
	}
}
