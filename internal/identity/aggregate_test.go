package identity

import (
	"testing"

	"github.com/netintel/netintelreceiver/internal/capture"
	"github.com/netintel/netintelreceiver/internal/l7"
)

// Kernel aggregates keep the observing process's pid and the peer: a client on loopback by
// address and port, a pod by address, the Internet by network. Each is named as an exchange's
// peer would be.
func TestAggregateEnds(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, []string{"OTEL_SERVICE_NAME=checkout"}, "", "/bin/checkout")
	fakeProc(t, root, 20, []string{"OTEL_SERVICE_NAME=web"}, "", "/bin/web")
	fakeProc(t, root, 30, []string{"OTEL_SERVICE_NAME=cart"}, "", "/bin/cart")
	r := New(Options{ProcRoot: root})
	r.Conn(opened(10, "checkout", capture.RoleServer, "127.0.0.9:8080", "127.0.0.1:40000"))
	r.Conn(opened(20, "web", capture.RoleClient, "127.0.0.1:40000", "127.0.0.9:8080"))
	r.Conn(opened(30, "cart", capture.RoleClient, "10.1.2.3:51000", "10.9.9.9:8080"))

	server := l7.Endpoint{Addr: ap("127.0.0.9:8080"), Process: capture.Process{PID: 10}}
	cases := []struct {
		client     string
		wantClient string
		wantLocal  bool
	}{
		{"127.0.0.1:40000", "web", true},                // on loopback: by address and port
		{"10.1.2.3:0", "cart", true},                    // a pod on this node: by its address
		{"203.0.113.0:0", "clients of checkout", false}, // the Internet: the clients of the service
	}
	for _, c := range cases {
		a := &l7.Aggregate{Side: l7.SideServer, Server: server, Client: l7.Endpoint{Addr: ap(c.client)}}
		client, srv := r.AggregateEnds(a)
		if srv.Name != "checkout" || !srv.Local {
			t.Errorf("%s: server %+v", c.client, srv)
		}
		if client.Name != c.wantClient || client.Local != c.wantLocal {
			t.Errorf("%s: client %q local %v, want %q local %v", c.client, client.Name, client.Local, c.wantClient, c.wantLocal)
		}
	}

	// The client's side: its own process by pid, the server by address.
	a := &l7.Aggregate{Side: l7.SideClient, Client: l7.Endpoint{Process: capture.Process{PID: 20}}, Server: l7.Endpoint{Addr: ap("127.0.0.9:8080")}}
	client, srv := r.AggregateEnds(a)
	if client.Name != "web" || srv.Name != "checkout" || !srv.Local {
		t.Errorf("client side: %q -> %q (local %v)", client.Name, srv.Name, srv.Local)
	}
}

// A ClusterIP the client dialled is named by the local server that answered, once the two
// halves of one request showed it; a real listener is never overridden (healthy twin).
func TestLearnVirtual(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, []string{"OTEL_SERVICE_NAME=checkout"}, "", "/bin/checkout")
	fakeProc(t, root, 11, []string{"OTEL_SERVICE_NAME=ledger"}, "", "/bin/ledger")
	r := New(Options{ProcRoot: root})
	r.Conn(opened(10, "checkout", capture.RoleServer, "10.1.2.9:8080", "10.1.2.3:40000"))
	r.Conn(opened(11, "ledger", capture.RoleServer, "10.1.2.8:9090", "10.1.2.3:40001"))
	dialled := &l7.Exchange{Server: l7.Endpoint{Addr: ap("10.96.0.10:80")}}
	if s := r.Server(dialled); s.Local {
		t.Fatalf("before learning, the ClusterIP is %+v", s)
	}
	r.LearnVirtual(ap("10.96.0.10:80"), ap("10.1.2.9:8080"), 10)
	if s := r.Server(dialled); s.Name != "checkout" || !s.Local {
		t.Errorf("after learning, the ClusterIP is %+v, want checkout", s)
	}
	r.LearnVirtual(ap("10.1.2.8:9090"), ap("10.1.2.9:8080"), 10)
	if s := r.Server(&l7.Exchange{Server: l7.Endpoint{Addr: ap("10.1.2.8:9090")}}); s.Name != "ledger" {
		t.Errorf("a real listener was overridden: %+v", s)
	}
}
