//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Real container runtimes for the naming scenario: containerd (its ctr runs the pod-like
// container) and dockerd, started by the test when none runs and stopped at its end. No
// registry is reachable: the image is a busybox rootfs imported into both.

const (
	busyboxImage = "netintel-busybox:e2e"
	// docker save | ctr import names it after Docker's default registry.
	busyboxImageRef = "docker.io/library/" + busyboxImage
	criNamespace    = "k8s.io" // the containerd namespace the CRI plugin (kubelet) uses
	runtimeTimeout  = 60 * time.Second
)

// containerRuntimes makes sure containerd and dockerd answer (starting the missing ones) and
// that both have the busybox image. containerd comes first: a dockerd started after it uses
// it (namespace "moby") instead of a containerd of its own.
func (s *scenario) containerRuntimes() {
	s.t.Helper()
	for _, bin := range []string{"containerd", "ctr", "dockerd", "docker", "runc", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			s.t.Fatalf("%s: %v (install docker.io, containerd and busybox-static; .ci/run does)", bin, err)
		}
	}
	if _, err := s.run(10*time.Second, "ctr", "version"); err != nil {
		s.t.Log("containerd is not running: starting it for this test")
		s.startProcess("containerd", "containerd")
		s.waitFor("containerd", func() error { _, err := s.run(5*time.Second, "ctr", "version"); return err })
	}
	if _, err := s.run(10*time.Second, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		s.t.Log("dockerd is not running: starting it for this test (no iptables, no bridge: containers use the host network)")
		s.t.Cleanup(func() {
			// After dockerd stopped (cleanups run last first): the parent cgroup it made.
			dirs, _ := filepath.Glob("/sys/fs/cgroup/*/docker")
			for _, d := range append(dirs, "/sys/fs/cgroup/docker") {
				_ = os.Remove(d) // only when empty
			}
		})
		s.startProcess("dockerd", "dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none")
		s.waitFor("dockerd", func() error {
			_, err := s.run(5*time.Second, "docker", "version", "--format", "{{.Server.Version}}")
			return err
		})
	}
	driver, _ := s.run(10*time.Second, "docker", "info", "--format", "{{.Driver}} {{.CgroupDriver}} cgroup v{{.CgroupVersion}}")
	s.t.Logf("dockerd: storage driver, cgroup driver: %s; containerd snapshotter: %s", strings.TrimSpace(driver), s.snapshotter())
	s.busyboxImage()
}

// snapshotter is containerd's overlayfs snapshotter where it loaded (not on an overlayfs
// root, as in a CI job that runs in a container), else the native one, which works anywhere.
func (s *scenario) snapshotter() string {
	out, _ := s.run(10*time.Second, "ctr", "plugins", "ls")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "io.containerd.snapshotter.v1" && f[1] == "overlayfs" && f[len(f)-1] == "ok" {
			return "overlayfs"
		}
	}
	return "native"
}

func (s *scenario) waitFor(what string, ready func() error) {
	s.t.Helper()
	deadline := time.Now().Add(runtimeTimeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready after %s: %v\nits log:\n%s", what, runtimeTimeout, err, tail(s.path(what+".log"), 20))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// busyboxImage imports a rootfs of the static busybox (every applet a symlink to it, and a
// /www for httpd) into Docker, and Docker's copy into containerd's k8s.io namespace; both
// are removed at the end (after the containers: cleanups run last first).
func (s *scenario) busyboxImage() {
	s.t.Helper()
	rootfs := s.path("rootfs")
	for _, d := range []string{"bin", "www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		s.t.Fatal(err)
	}
	s.mustRun(10*time.Second, "cp", bb, filepath.Join(rootfs, "bin", "busybox"))
	for _, applet := range strings.Fields(s.mustRun(10*time.Second, bb, "--list")) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil && !os.IsExist(err) {
			s.t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"index.html": "ok\n", "items": "items\n"} {
		if err := os.WriteFile(filepath.Join(rootfs, "www", name), []byte(body), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.mustRun(30*time.Second, "tar", "-C", rootfs, "-cf", s.path("rootfs.tar"), ".")
	var id string // ctr import also names the image by its id
	s.t.Cleanup(func() {
		_, _ = s.run(30*time.Second, "ctr", "-n", criNamespace, "images", "rm", busyboxImageRef, id)
		_, _ = s.run(30*time.Second, "docker", "image", "rm", busyboxImage)
	})
	id = strings.TrimSpace(s.mustRun(60*time.Second, "docker", "import", s.path("rootfs.tar"), busyboxImage))
	s.mustRun(60*time.Second, "docker", "save", "-o", s.path("image.tar"), busyboxImage)
	s.mustRun(60*time.Second, "ctr", "-n", criNamespace, "images", "import", "--snapshotter", s.snapshotter(), s.path("image.tar"))
}

// dockerRun starts a detached container on the host network and removes it at the end.
// It returns the container's id.
func (s *scenario) dockerRun(name string, env []string, cmd ...string) string {
	s.t.Helper()
	_, _ = s.run(30*time.Second, "docker", "rm", "-f", name) // a leftover of an interrupted run
	args := []string{"docker", "run", "-d", "--name", name, "--network", "host"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(append(args, busyboxImage), cmd...)
	id := strings.TrimSpace(s.mustRun(60*time.Second, args...))
	s.t.Cleanup(func() { _, _ = s.run(30*time.Second, "docker", "rm", "-f", name) })
	if len(id) != 64 {
		s.t.Fatalf("docker run %s: %q is no container id", name, id)
	}
	return id
}

// podContainer is a container started with ctr the way the CRI plugin starts a pod's
// container: in containerd's k8s.io namespace, with the CRI annotations, a 64-hex id and a
// kubelet-style cgroup (cgroupfs driver) under the pod's cgroup.
type podContainer struct {
	ID, Namespace, Pod, UID, Container string
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newPodUID() string {
	h := randomHex(16)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

func (s *scenario) ctrRunPod(p podContainer, cmd ...string) {
	s.t.Helper()
	podCgroup := "/kubepods/besteffort/pod" + p.UID
	args := []string{"ctr", "-n", criNamespace, "run", "-d", "--net-host", "--snapshotter", s.snapshotter(), "--cgroup", podCgroup + "/" + p.ID}
	for k, v := range map[string]string{
		"io.kubernetes.cri.container-type":    "container",
		"io.kubernetes.cri.container-name":    p.Container,
		"io.kubernetes.cri.sandbox-name":      p.Pod,
		"io.kubernetes.cri.sandbox-namespace": p.Namespace,
		"io.kubernetes.cri.sandbox-uid":       p.UID,
	} {
		args = append(args, "--annotation", k+"="+v)
	}
	args = append(append(args, busyboxImageRef, p.ID), cmd...)
	s.mustRun(60*time.Second, args...)
	s.t.Cleanup(func() {
		ctr := func(a ...string) { _, _ = s.run(30*time.Second, append([]string{"ctr", "-n", criNamespace}, a...)...) }
		ctr("task", "kill", "-s", "KILL", p.ID)
		for i := 0; i < 50; i++ {
			if out, _ := s.run(5*time.Second, "ctr", "-n", criNamespace, "task", "ls"); !strings.Contains(out, p.ID) {
				break
			}
			ctr("task", "rm", "-f", p.ID)
			time.Sleep(100 * time.Millisecond)
		}
		ctr("container", "rm", p.ID)
		// runc removes the container's cgroup; the pod's and the QoS class's it created are ours.
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range append(hierarchies, "/sys/fs/cgroup") {
			for _, dir := range []string{podCgroup, "/kubepods/besteffort", "/kubepods"} {
				_ = os.Remove(filepath.Join(h, dir))
			}
		}
	})
}
