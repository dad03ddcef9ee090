package l7
import ("testing";"os";"github.com/netintel/netintelreceiver/internal/capture")
func TestTmpGreeter(t *testing.T) {
	f, _ := os.Open("/tmp/honest-grpc/greeter3.events")
	evs, err := capture.ReadRecording(f)
	if err != nil { t.Fatal(err) }
	var xs []*Exchange
	tr := NewTracker(DefaultOptions(), func(x *Exchange) { xs = append(xs, x) })
	feed(tr, evs)
	for _, x := range xs {
		st := -2; if x.GRPC != nil { st = x.GRPC.Status }
		t.Logf("%v %v s%d %s %q grpc=%d http=%d fail=%v partial=%v cookie=%d", x.Side, x.Protocol, x.StreamID, x.Client.Addr, x.HTTP.Path, st, x.HTTP.Status, x.Failure, x.HTTP.Partial, x.Cookie)
	}
	t.Logf("%+v", tr.Counters())
}
