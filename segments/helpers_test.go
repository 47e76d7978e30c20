package segments

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

type sample struct {
	T int64
	V float64
}

// testSeries is what a test wrote: labels and, per chunk, kind and samples.
type testSeries struct {
	lset   labels.Labels
	chunks []testChunk
}

type testChunk struct {
	kind    ChunkKind
	samples []sample
}

// newXOR builds an XOR chunk from samples.
func newXOR(t testing.TB, samples []sample) *chunkenc.XORChunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		app.Append(0, s.T, s.V)
	}
	return c
}

// randomWalk returns n samples from t0 every step ms.
func randomWalk(rng *rand.Rand, t0, step int64, n int, v float64) []sample {
	out := make([]sample, n)
	for i := range out {
		v += rng.NormFloat64()
		out[i] = sample{T: t0 + int64(i)*step, V: v}
	}
	return out
}

func (ts testSeries) data(t testing.TB) SeriesData {
	sd := SeriesData{Labels: ts.lset}
	for _, c := range ts.chunks {
		sd.Chunks = append(sd.Chunks, ChunkMeta{Kind: c.kind, Chunk: newXOR(t, c.samples)})
	}
	return sd
}

const (
	testT0   = int64(1_700_000_000_000)
	testStep = int64(10_000)
)

// genSeries returns n realistic raw series with 6 labels each (some have
// env, the others tier) and nChunks chunks of 120 samples, sorted by labels,
// plus one rollup-style series with all five aggregate kinds.
func genSeries(seed uint64, n, nChunks int) []testSeries {
	rng := rand.New(rand.NewPCG(seed, 1))
	names := []string{"cpu_usage", "mem_used_bytes", "disk_io_seconds", "net_rx_bytes", "net_tx_bytes"}
	jobs := []string{"api", "db", "cache", "worker"}
	regions := []string{"eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"}
	modes := []string{"idle", "user", "system", "iowait", "steal"}
	envs := []string{"prod", "staging", "dev"}
	var out []testSeries
	seen := map[string]bool{}
	for len(out) < n {
		i := len(out)
		b := labels.NewBuilder(labels.EmptyLabels())
		b.Set("__name__", names[rng.IntN(len(names))])
		b.Set("instance", fmt.Sprintf("host-%02d", rng.IntN(40)))
		b.Set("job", jobs[rng.IntN(len(jobs))])
		b.Set("region", regions[rng.IntN(len(regions))])
		b.Set("mode", modes[rng.IntN(len(modes))])
		if i%3 == 0 {
			b.Set("tier", fmt.Sprintf("t%d", rng.IntN(3)))
		} else {
			b.Set("env", envs[rng.IntN(len(envs))])
		}
		lset := b.Labels()
		if seen[lset.String()] {
			continue
		}
		seen[lset.String()] = true
		ts := testSeries{lset: lset}
		v := float64(rng.IntN(1000))
		for c := 0; c < nChunks; c++ {
			smp := randomWalk(rng, testT0+int64(c*120)*testStep, testStep, 120, v)
			v = smp[len(smp)-1].V
			ts.chunks = append(ts.chunks, testChunk{kind: KindRaw, samples: smp})
		}
		out = append(out, ts)
	}
	// A rollup-style series: per bucket range, five parallel chunks.
	roll := testSeries{lset: labels.FromStrings("__name__", "cpu_usage_rollup", "env", "prod", "instance", "host-00", "job", "api", "mode", "user", "region", "eu-west-1")}
	for kind := KindCount; kind <= KindCounter; kind++ {
		for c := 0; c < 2; c++ {
			smp := randomWalk(rng, testT0+int64(c*60)*300_000, 300_000, 60, float64(kind)*100)
			roll.chunks = append(roll.chunks, testChunk{kind: kind, samples: smp})
		}
	}
	out = append(out, roll)
	slices.SortFunc(out, func(a, b testSeries) int { return labels.Compare(a.lset, b.lset) })
	return out
}

// writeTestSegment writes series under parent and returns the meta.
func writeTestSegment(t testing.TB, parent string, meta Meta, series []testSeries) Meta {
	t.Helper()
	return writeTestSegmentWith(t, parent, meta, series, DefaultWriterOptions())
}

// writeTestSegmentWith is writeTestSegment with writer options.
func writeTestSegmentWith(t testing.TB, parent string, meta Meta, series []testSeries, opts WriterOptions) Meta {
	t.Helper()
	data := make([]SeriesData, len(series))
	for i, s := range series {
		data[i] = s.data(t)
	}
	// Reverse, so WriteSeries has to sort.
	slices.Reverse(data)
	m, err := WriteSeriesWithOptions(parent, meta, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// formats are the ways of writing a segment (format versions 1 to 4), for
// tests that run on each.
var formats = []struct {
	name string
	opts WriterOptions
}{
	{"plain", WriterOptions{NoStats: true}},
	{"compressed", WriterOptions{Compress: true, NoStats: true}},
	{"plain-stats", WriterOptions{NoRuns: true}},
	{"plain-stats-runs", WriterOptions{}},
	{"compressed-stats", WriterOptions{Compress: true, NoRuns: true}},
	{"compressed-stats-runs", WriterOptions{Compress: true}},
}

// readAll reads every series and sample of s.
func readAll(s *Segment) ([]testSeries, error) {
	it, err := s.Select()
	if err != nil {
		return nil, err
	}
	var out []testSeries
	for it.Next() {
		ts := testSeries{lset: it.Labels()}
		for _, cm := range it.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				return nil, err
			}
			tc := testChunk{kind: cm.Kind}
			ci := c.Iterator(nil)
			for ci.Next() == chunkenc.ValFloat {
				t, v := ci.At()
				tc.samples = append(tc.samples, sample{t, v})
			}
			if err := ci.Err(); err != nil {
				return nil, err
			}
			if len(tc.samples) == 0 || tc.samples[0].T != cm.MinTime || tc.samples[len(tc.samples)-1].T != cm.MaxTime {
				return nil, fmt.Errorf("series %s: chunk samples do not match meta %d..%d", ts.lset, cm.MinTime, cm.MaxTime)
			}
			ts.chunks = append(ts.chunks, tc)
		}
		out = append(out, ts)
	}
	return out, it.Err()
}

// sortedChunks returns ts's chunks in the (Kind, MinTime) order a segment
// stores them.
func (ts testSeries) sortedChunks() []testChunk {
	c := slices.Clone(ts.chunks)
	slices.SortStableFunc(c, func(a, b testChunk) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.samples[0].T, b.samples[0].T))
	})
	return c
}

func equalSeries(t testing.TB, want, got []testSeries) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("got %d series, want %d", len(got), len(want))
	}
	for i := range want {
		if !labels.Equal(want[i].lset, got[i].lset) {
			t.Fatalf("series %d: got %s, want %s", i, got[i].lset, want[i].lset)
		}
		wc := want[i].sortedChunks()
		if len(wc) != len(got[i].chunks) {
			t.Fatalf("series %s: got %d chunks, want %d", want[i].lset, len(got[i].chunks), len(wc))
		}
		for j := range wc {
			if wc[j].kind != got[i].chunks[j].kind || !slices.Equal(wc[j].samples, got[i].chunks[j].samples) {
				t.Fatalf("series %s chunk %d: samples differ", want[i].lset, j)
			}
		}
	}
}

// requireCorruption fails unless err is a *CorruptionError naming file.
func requireCorruption(t testing.TB, err error, file string) {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want *CorruptionError", err, err)
	}
	if ce.File != file {
		t.Fatalf("corruption names %q, want %q: %v", ce.File, file, err)
	}
}

// copyDir copies a segment directory tree.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openT(t testing.TB, dir string) *Segment {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func timeNow() time.Time { return time.Now() }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
