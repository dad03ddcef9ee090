package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The processes the benchmark starts: nginx (the server under load) and the collector.

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(logPath string, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process group and waits up to 20 s; it reports whether the
// process exited by itself with status 0.
func (p *proc) stop() bool {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err == nil
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
		return false
	}
}

// nginx serves `return 200` on / and /items/, 1% of the requests (random, by request id)
// answered 503, and on /healthy without errors. It logs only the 5xx it served (errLog), the
// ground truth of the error count.
type nginx struct {
	*proc
	errLog string
}

func startNginx(work, addr string) (*nginx, error) {
	tmp := filepath.Join(work, "nginx-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	errLog := filepath.Join(work, "nginx.5xx.log")
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx.error.log warn;
events { worker_connections 4096; }
http {
    keepalive_requests 1000000;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    default_type text/plain;
    split_clients "${request_id}" $variant { 1%% err; * ok; }
    split_clients "${request_id}" $outage { 50%% err; * ok; }
    map $status $is5xx { ~^5 1; default 0; }
    access_log %[4]s combined if=$is5xx;
    server {
        listen %[3]s;
        location / {
            if ($variant = err) { return 503; }
            return 200 "ok\n";
        }
        location /items/ {
            if ($variant = err) { return 503; }
            return 200 "item\n";
        }
        location = /healthy { return 200 "ok\n"; }
        location = /outage {
            if ($outage = err) { return 503; }
            return 200 "ok\n";
        }
    }
}
`, work, tmp, addr, errLog)
	path := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(filepath.Join(work, "nginx.log"), "nginx", "-p", work, "-e", filepath.Join(work, "nginx.error.log"), "-c", path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(childrenOf(p.pid())) == 0 {
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("nginx started no worker in 10 s; see nginx.error.log")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &nginx{proc: p, errLog: errLog}, nil
}

// pids are the master and its workers.
func (n *nginx) pids() []int { return append([]int{n.pid()}, childrenOf(n.pid())...) }

// served5xx is how many 5xx nginx has answered so far (lines of its 5xx-only access log).
func (n *nginx) served5xx() uint64 {
	b, _ := os.ReadFile(n.errLog)
	return uint64(bytes.Count(b, []byte{'\n'}))
}

// copyCollector copies the collector binary into work, so that every session runs the same
// build even if the original is rebuilt meanwhile, and describes it (modification time and
// sha256) for the report.
func copyCollector(src, work string) (path, desc string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(work, filepath.Base(src))
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	desc = fmt.Sprintf("`%s` of %s UTC, sha256 %x…", src, st.ModTime().UTC().Format("2006-01-02 15:04:05"), h.Sum(nil)[:6])
	return path, desc, err
}

// startCollector writes a config for dir and waits for the collector to be ready. The
// receiver's own counters (netintel.receiver.*) go down the metrics pipeline too.
func startCollector(o options, dir string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`{
  "receivers": {"net_intel": {
    "services": [{"name": "web", "match": %q}],
    "intelligence": {"flush_interval": "2s"},
    "telemetry": {"metrics_in_pipeline": true}
  }},
  "exporters": {
    "file/logs": {"path": %q, "flush_interval": "1s"},
    "file/traces": {"path": %q, "flush_interval": "1s"},
    "file/metrics": {"path": %q, "flush_interval": "1s"}
  },
  "service": {
    "telemetry": {"logs": {"level": "info"}, "metrics": {"level": "none"}},
    "pipelines": {
      "logs": {"receivers": ["net_intel"], "exporters": ["file/logs"]},
      "traces": {"receivers": ["net_intel"], "exporters": ["file/traces"]},
      "metrics": {"receivers": ["net_intel"], "exporters": ["file/metrics"]}
    }
  }
}
`, o.addr, filepath.Join(dir, "logs.json"), filepath.Join(dir, "traces.json"), filepath.Join(dir, "metrics.json"))
	path := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "collector.log")
	p, err := start(logPath, o.collector, "--config", path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "Everything is ready") {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("collector exited before ready (%v); see %s", p.err, logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("collector not ready after 90 s; see %s", logPath)
		}
	}
}
