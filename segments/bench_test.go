package segments

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// benchSeries returns 100 hosts x 10 CPU metrics of integer percentages (a
// bounded random walk) every 10 s for 2 h, cut into chunks of 120 samples
// as the head does.
func benchSeries(b *testing.B) ([]SeriesData, int) {
	rng := rand.New(rand.NewPCG(42, 42))
	const (
		hosts, metrics = 100, 10
		step           = 10_000
		samples        = 2 * 3600 * 1000 / step
		perChunk       = 120
	)
	var out []SeriesData
	for h := 0; h < hosts; h++ {
		for m := 0; m < metrics; m++ {
			lset := labels.FromStrings("__name__", fmt.Sprintf("cpu_%s", []string{
				"user", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "nice", "guest_nice"}[m]),
				"instance", fmt.Sprintf("host-%03d:9100", h), "job", "node", "region", []string{"eu", "us", "ap"}[h%3])
			v := rng.IntN(101)
			sd := SeriesData{Labels: lset}
			var app chunkenc.Appender
			for i := 0; i < samples; i++ {
				if i%perChunk == 0 {
					c := chunkenc.NewXORChunk()
					app, _ = c.Appender()
					sd.Chunks = append(sd.Chunks, ChunkMeta{Chunk: c})
				}
				v = min(100, max(0, v+rng.IntN(7)-3))
				app.Append(0, testT0+int64(i)*step, float64(v))
			}
			out = append(out, sd)
		}
	}
	return out, hosts * metrics * samples
}

// BenchmarkBytesPerSample writes the benchmark data set as one segment and
// reports its size per sample: XOR chunk data alone, chunks files (with
// record framing), and everything on disk (chunks, index, meta.json).
func BenchmarkBytesPerSample(b *testing.B) {
	series, nSamples := benchSeries(b)
	var xorBytes int
	for _, s := range series {
		for _, c := range s.Chunks {
			xorBytes += len(c.Chunk.Bytes())
		}
	}
	b.ReportAllocs()
	var seg *Segment
	for b.Loop() {
		parent := b.TempDir()
		m, err := WriteSeries(parent, Meta{}, series)
		if err != nil {
			b.Fatal(err)
		}
		if seg, err = Open(filepath.Join(parent, m.ID)); err != nil {
			b.Fatal(err)
		}
		seg.Close()
	}
	var chunkFiles int64
	for _, f := range seg.files[1:] {
		chunkFiles += f.Size
	}
	b.ReportMetric(float64(xorBytes)/float64(nSamples), "xor-bytes/sample")
	b.ReportMetric(float64(chunkFiles)/float64(nSamples), "chunkfile-bytes/sample")
	b.ReportMetric(float64(seg.Size())/float64(nSamples), "total-bytes/sample")
	b.ReportMetric(float64(nSamples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkSelectRead selects series from the benchmark segment and reads
// every sample of every chunk.
func BenchmarkSelectRead(b *testing.B) {
	series, _ := benchSeries(b)
	parent := b.TempDir()
	m, err := WriteSeries(parent, Meta{}, series)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(filepath.Join(parent, m.ID))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cases := []struct {
		name string
		ms   []*labels.Matcher
	}{
		{"all", nil},
		{"metric", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu_user")}},
		{"metric+regex", []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu_user"),
			labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-0[0-4].*"),
			labels.MustNewMatcher(labels.MatchNotEqual, "region", "ap"),
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var nSamples, nSeries int
			var it chunkenc.Iterator
			for b.Loop() {
				n, m := readFloats(b, s, &it, tc.ms...)
				nSamples, nSeries = nSamples+n, nSeries+m
			}
			b.ReportMetric(float64(nSamples)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(nSeries)/b.Elapsed().Seconds(), "series/s")
		})
	}
}
