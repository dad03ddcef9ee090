package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The image is not built in CI (no container engine), so these checks keep
// the Dockerfile building the same binary `make dist` does: the same ocb
// version, the same manifest, a Go toolchain of the module's minor version,
// a static build, and a final image that runs the collector on a config that
// exists in the repository.

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func submatch(t *testing.T, text, what string, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no match for %s", what, re)
	}
	return m[1]
}

func TestDockerfileBuildsWhatMakeDistBuilds(t *testing.T) {
	dockerfile := readRepoFile(t, "../Dockerfile")
	makefile := readRepoFile(t, "../Makefile")
	gomod := readRepoFile(t, "../go.mod")

	ocbDocker := submatch(t, dockerfile, "Dockerfile", regexp.MustCompile(`(?m)^ARG OCB_VERSION=v?(\S+)`))
	ocbMake := submatch(t, makefile, "Makefile", regexp.MustCompile(`(?m)^BUILDER_VERSION\s*:?=\s*v?(\S+)`))
	if ocbDocker != ocbMake {
		t.Errorf("Dockerfile builds with ocb %s, make dist with %s", ocbDocker, ocbMake)
	}
	if !strings.Contains(dockerfile, "go.opentelemetry.io/collector/cmd/builder@v${OCB_VERSION}") {
		t.Error("Dockerfile does not install ocb at OCB_VERSION")
	}
	if !regexp.MustCompile(`(?m)^RUN builder --config=builder-config\.yaml`).MatchString(dockerfile) {
		t.Error("Dockerfile does not run ocb on builder-config.yaml")
	}

	goDocker := submatch(t, dockerfile, "Dockerfile", regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`))
	goMod := submatch(t, gomod, "go.mod", regexp.MustCompile(`(?m)^go (\d+\.\d+)`))
	if goDocker != goMod {
		t.Errorf("Dockerfile builds with Go %s, go.mod wants %s.x", goDocker, goMod)
	}
	if !strings.Contains(dockerfile, "CGO_ENABLED=0") {
		t.Error("Dockerfile must build with CGO_ENABLED=0: the final image has no libc")
	}
	if !strings.Contains(dockerfile, "COPY --from=build /src/dist/otelcol-netintel /otelcol-netintel") {
		t.Error("final stage does not take dist/otelcol-netintel from the build stage")
	}

	// Every file the final stage copies from the context exists.
	for _, m := range regexp.MustCompile(`(?m)^COPY (deploy/\S+) `).FindAllStringSubmatch(dockerfile, -1) {
		if _, err := os.Stat("../" + m[1]); err != nil {
			t.Errorf("Dockerfile copies %s: %v", m[1], err)
		}
	}
	if !strings.Contains(dockerfile, `ENTRYPOINT ["/otelcol-netintel"]`) ||
		!strings.Contains(dockerfile, `CMD ["--config=/etc/otelcol-netintel/config.yaml"]`) {
		t.Error("the image must run the collector on its default config")
	}
	user := submatch(t, dockerfile, "Dockerfile", regexp.MustCompile(`(?m)^USER (\S+)`))
	if strings.HasPrefix(user, "0") || user == "root" {
		t.Errorf("image user is %s; the default must be unprivileged (the DaemonSet sets uid 0 itself)", user)
	}
}

func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	ignore := readRepoFile(t, "../.dockerignore")
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, needed := range []string{"bpf", "deploy", "internal", "receiver", "builder-config.yaml", "go.mod", "go.sum"} {
			if strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/") == needed {
				t.Errorf(".dockerignore excludes %s, which the image build needs", needed)
			}
		}
	}
	for _, excluded := range []string{"dist", ".git"} {
		if !strings.Contains("\n"+ignore+"\n", "\n"+excluded+"\n") {
			t.Errorf(".dockerignore should exclude %s (local build output / VCS data)", excluded)
		}
	}
}
