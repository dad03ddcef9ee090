//go:build linux && (amd64 || arm64)

package capture

import (
	"reflect"
	"testing"
)

func TestMissingCaps(t *testing.T) {
	cases := []struct {
		name string
		caps uint64
		want []string
	}{
		{"bpf+perfmon", 1<<capBPF | 1<<capPerfmon, nil},
		{"sys_admin stands in for bpf and perfmon", 1 << capSysAdmin, nil},
		{"nothing", 0, []string{"CAP_BPF", "CAP_PERFMON"}},
		{"no perfmon", 1 << capBPF, []string{"CAP_PERFMON"}},
		{"no bpf", 1 << capPerfmon, []string{"CAP_BPF"}},
	}
	for _, tc := range cases {
		if got := missingCaps(tc.caps); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: missing %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTracepointOf(t *testing.T) {
	for sec, want := range map[string][2]string{
		"tracepoint/syscalls/sys_enter_read":  {"syscalls", "sys_enter_read"},
		"tracepoint/sock/inet_sock_set_state": {"sock", "inet_sock_set_state"},
		"kprobe/tcp_connect":                  {},
		"tracepoint/syscalls":                 {},
	} {
		g, n, ok := tracepointOf(sec)
		if ok != (want[0] != "") || g != want[0] || n != want[1] {
			t.Errorf("%s: %q %q %v", sec, g, n, ok)
		}
	}
}

func TestEffectiveCapsReadable(t *testing.T) {
	if _, err := effectiveCaps(); err != nil {
		t.Fatalf("CapEff: %v", err)
	}
}
