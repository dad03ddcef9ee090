package l7

import (
	"testing"

	"github.com/netintel/netintelreceiver/internal/capture"
)

// Exchanges per second per core: every connection of a fixture, both of its sockets, replayed
// through one tracker (payloads cut at the default 512 bytes), closed and replayed again.
// Each exchange is counted once per observing socket, as the pipeline sees it.

func benchFixture(b *testing.B, name string) {
	var evs []capture.Event
	for i, fc := range loadFixture(b, name) {
		evs = append(evs, fc.events(uint64(i), replay{maxPayload: 512, close: true})...)
	}
	n := 0
	tr := NewTracker(DefaultOptions(), func(*Exchange) { n++ })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		feed(tr, evs)
	}
	b.StopTimer()
	if n == 0 {
		b.Fatal("no exchanges")
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "exchanges/s")
	b.ReportMetric(float64(n)/float64(b.N), "exchanges/op")
}

func BenchmarkHTTP1(b *testing.B)      { benchFixture(b, "http1.tsv") }
func BenchmarkHTTP2(b *testing.B)      { benchFixture(b, "http2.tsv") }
func BenchmarkGRPC(b *testing.B)       { benchFixture(b, "grpc.tsv") }
func BenchmarkDNS(b *testing.B)        { benchFixture(b, "dns.tsv") }
func BenchmarkTLS(b *testing.B)        { benchFixture(b, "tls.tsv") }
func BenchmarkGRPCStream(b *testing.B) { benchFixture(b, "grpc_stream.tsv") }
