package intel

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// The kernel keeps a healthy HTTP/1 exchange when its request's randomness reaches
// capture.SampleThreshold; intel decides spans with contrib's pkg/sampling on the trace id. Both
// must keep exactly the same requests, or a span would be sampled on one side of the ring
// buffer and not on the other.
func TestKernelAndIntelSampleAlike(t *testing.T) {
	e := New(DefaultOptions())
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []float64{0.01, 0.1, 0.25, 0.5, 0.999} {
		kept := 0
		for i := 0; i < 20000; i++ {
			c, s, seq := rng.Uint32(), rng.Uint32(), rng.Uint32()
			hi, lo, _, _ := capture.RequestIdentity(c, s, seq, 0)
			var id [16]byte
			binary.BigEndian.PutUint64(id[:8], hi)
			binary.BigEndian.PutUint64(id[8:], lo)
			kernel := capture.RequestRandomness(c, s, seq, 0) >= capture.SampleThreshold(p)
			if got := e.decide(id, false, p).Export; got != kernel {
				t.Fatalf("p=%v request %d/%d/%d: kernel keeps %v, intel %v", p, c, s, seq, kernel, got)
			}
			if kernel {
				kept++
			}
		}
		if f := float64(kept) / 20000; f < p*0.8 || f > p*1.2+0.005 {
			t.Errorf("p=%v kept %.4f", p, f)
		}
	}
}
