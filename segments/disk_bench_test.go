package segments

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// targetsBlocks returns the disk-per-sample data of ../shared/TARGETS.md,
// as the loadtest's targets-disk preset makes it: hosts × 10 CPU gauges
// (Telegraf's cpu fields as integer percentages, mean-reverting random
// walks, idle what the others leave of 100), 10 labels per host, one
// sample every 10 s for the given hours. It is cut as the head flushes it:
// one SeriesData slice per 2 h block, chunks of 120 samples.
func targetsBlocks(hosts, hours int) (blocks [][]SeriesData, nSamples int) {
	const (
		step     = 10_000
		block    = 2 * 3600 * 1000
		perChunk = 120
	)
	t0 := testT0 - testT0%(24*3600*1000) // a day boundary
	fields := []string{"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
		"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"}
	regions := []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"}
	oses := []string{"ubuntu-22.04", "ubuntu-24.04", "debian-12", "rhel-9", "amazonlinux-2023"}
	services := []string{"api", "web", "db", "cache", "queue", "search", "auth", "billing", "batch", "ingest"}
	nBlocks := hours / 2
	blocks = make([][]SeriesData, nBlocks)
	samplesPerBlock := block / step
	for h := 0; h < hosts; h++ {
		r := rand.New(rand.NewPCG(uint64(h), 17))
		region := regions[r.IntN(len(regions))]
		host := labels.FromStrings(
			"arch", []string{"x64", "arm64"}[r.IntN(2)],
			"datacenter", region+[]string{"a", "b", "c"}[r.IntN(3)],
			"host", fmt.Sprintf("host_%d", h),
			"os", oses[r.IntN(len(oses))],
			"rack", fmt.Sprintf("rack-%02d", r.IntN(24)),
			"region", region,
			"service", services[r.IntN(len(services))],
			"service_environment", []string{"production", "staging", "test"}[r.IntN(3)],
			"service_version", fmt.Sprintf("%d", r.IntN(3)),
			"team", []string{"SF", "NYC", "LON", "CHI"}[r.IntN(4)],
		)
		// The loadtest's cpu walk: a load level, nine busy fields pulled
		// towards their means, idle the rest.
		load := 3 + r.Float64()*45
		st := []float64{load, load * 0.3, r.Float64(), 1 + 3*r.Float64(), 0.1 * r.Float64(), 0.5 * r.Float64(), 0.3 * r.Float64(), 0, 0}
		outIdx := [9]int{0, 1, 3, 4, 5, 6, 7, 8, 9}
		series := make([]SeriesData, len(fields))
		apps := make([]chunkenc.Appender, len(fields))
		for f := range fields {
			b := labels.NewBuilder(host)
			b.Set("__name__", "cpu_"+fields[f])
			series[f].Labels = b.Labels()
		}
		out := make([]float64, len(fields))
		for i := 0; i < nBlocks*samplesPerBlock; i++ {
			load = math.Max(1, math.Min(85, load+0.3*r.NormFloat64()))
			params := [9][3]float64{
				{load, 0.05, 2}, {load * 0.3, 0.05, 0.8}, {0.3, 0.05, 0.1}, {1.5, 0.1, 0.5},
				{0.05, 0.2, 0.02}, {0.4, 0.1, 0.1}, {0.2, 0.05, 0.1}, {0, 0.2, 0.05}, {0, 0.2, 0.02},
			}
			busy := 0.0
			for j, p := range params {
				st[j] = math.Max(0, st[j]+p[1]*(p[0]-st[j])+p[2]*r.NormFloat64())
				busy += st[j]
			}
			scale := 1.0
			if busy > 100 {
				scale = 100 / busy
			}
			used := 0.0
			for j := range params {
				v := math.Round(st[j] * scale)
				used += v
				out[outIdx[j]] = v
			}
			out[2] = math.Max(0, 100-used)
			for f := range fields {
				if i%samplesPerBlock == 0 && i > 0 {
					blocks[i/samplesPerBlock-1] = append(blocks[i/samplesPerBlock-1], series[f])
					series[f].Chunks = nil
				}
				if i%perChunk == 0 {
					c := chunkenc.NewXORChunk()
					apps[f], _ = c.Appender()
					series[f].Chunks = append(series[f].Chunks, ChunkMeta{Chunk: c})
				}
				apps[f].Append(0, t0+int64(i)*step, out[f])
			}
		}
		for f := range fields {
			blocks[nBlocks-1] = append(blocks[nBlocks-1], series[f])
		}
	}
	return blocks, hosts * len(fields) * nBlocks * samplesPerBlock
}

// publishBlocks writes each block as a segment, as a flush does, into a
// new set, and returns the set and the segments' IDs.
func publishBlocks(b *testing.B, blocks [][]SeriesData) (*Set, []string) {
	set, err := OpenSet(nil, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var metas []Meta
	var ids []string
	for i, bl := range blocks {
		m, err := WriteSeries(set.Dir(), Meta{Seq: uint64(i + 1)}, bl)
		if err != nil {
			b.Fatal(err)
		}
		metas, ids = append(metas, m), append(ids, m.ID)
	}
	if err := set.Publish(metas); err != nil {
		b.Fatal(err)
	}
	return set, ids
}

// segmentBytes splits a segment's bytes on disk into chunks files, index
// and meta.json.
func segmentBytes(tb testing.TB, s *Segment) (chunks, index, meta int64) {
	for _, f := range s.files[1:] {
		chunks += f.Size
	}
	st, err := os.Stat(filepath.Join(s.dir, metaFilename))
	if err != nil {
		tb.Fatal(err)
	}
	return chunks, s.files[0].Size, st.Size()
}

// BenchmarkDiskPerSample writes the TARGETS.md disk data (200 hosts × 10
// integer CPU gauges, 12 h at 10 s) as the head flushes it, one segment per
// 2 h block, then compacts the blocks into one day segment, and reports the
// bytes per sample on disk of both, split into chunks, index and meta.json,
// and of the day segment written uncompressed.
func BenchmarkDiskPerSample(b *testing.B) {
	blocks, n := targetsBlocks(200, 12)
	ns := float64(n)
	for b.Loop() {
		set, ids := publishBlocks(b, blocks)
		var fc, fi, fm int64
		segs, release := set.Acquire(minInt64, maxInt64)
		for _, s := range segs {
			c, i, m := segmentBytes(b, s)
			fc, fi, fm = fc+c, fi+i, fm+m
		}
		release()
		c, err := NewCompactor(nil, set, CompactOptions{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.merge(context.Background(), ids); err != nil {
			b.Fatal(err)
		}
		segs, release = set.Acquire(minInt64, maxInt64)
		if len(segs) != 1 {
			b.Fatalf("%d segments after compaction", len(segs))
		}
		dc, di, dm := segmentBytes(b, segs[0])
		release()
		b.ReportMetric(float64(fc+fi+fm)/ns, "flushed-B/sample")
		b.ReportMetric(float64(fc)/ns, "flushed-chunks-B/sample")
		b.ReportMetric(float64(fi)/ns, "flushed-index-B/sample")
		b.ReportMetric(float64(dc+di+dm)/ns, "day-B/sample")
		b.ReportMetric(float64(dc)/ns, "day-chunks-B/sample")
		b.ReportMetric(float64(di)/ns, "day-index-B/sample")
		b.ReportMetric(float64(dm)/ns, "day-meta-B/sample")
		if err := set.Close(); err != nil {
			b.Fatal(err)
		}
		// The same day segment uncompressed (format version 1, the same
		// 360-sample chunks): what the longer chunks alone save.
		us, err := Open(daySegment(b, blocks, true))
		if err != nil {
			b.Fatal(err)
		}
		uc, ui, um := segmentBytes(b, us)
		us.Close()
		b.ReportMetric(float64(uc+ui+um)/ns, "day-uncompressed-B/sample")
	}
}

// daySegment compacts blocks into one day segment, compressed or not, and
// opens it with cache (nil: a cache of its own).
func daySegment(b *testing.B, blocks [][]SeriesData, uncompressed bool) string {
	set, ids := publishBlocks(b, blocks)
	defer set.Close()
	c, err := NewCompactor(nil, set, CompactOptions{Uncompressed: uncompressed}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.merge(context.Background(), ids); err != nil {
		b.Fatal(err)
	}
	segs, release := set.Acquire(minInt64, maxInt64)
	defer release()
	return segs[0].Dir()
}

// BenchmarkDaySegmentRead reads a day segment of the TARGETS data (50
// hosts × 10 CPU gauges, 12 h at 10 s, compacted with the default options)
// written plain and compressed: every sample of every series ("all"), and
// the 10 series of one host ("host"). "compressed" reads through a page
// cache that holds the whole segment after the first round (warm);
// "compressed-cold" empties the cache before each round, so that every page
// read is decompressed, as on a first read.
func BenchmarkDaySegmentRead(b *testing.B) {
	blocks, _ := targetsBlocks(50, 12)
	plainDir, compDir := daySegment(b, blocks, true), daySegment(b, blocks, false)
	for _, fc := range []struct {
		name  string
		dir   string
		cache *PageCache
	}{
		{"plain", plainDir, nil},
		{"compressed", compDir, NewPageCache(DefaultPageCacheSize)},
		{"compressed-cold", compDir, NewPageCache(DefaultPageCacheSize)},
	} {
		s, err := OpenWithCache(fc.dir, fc.cache)
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			ms   []*labels.Matcher
		}{
			{"all", nil},
			{"host", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "host", "host_7")}},
		} {
			b.Run(fc.name+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				var nSamples int
				var it chunkenc.Iterator
				for b.Loop() {
					if fc.name == "compressed-cold" {
						fc.cache.reset()
					}
					n, _ := readFloats(b, s, &it, tc.ms...)
					nSamples += n
				}
				b.ReportMetric(float64(nSamples)/b.Elapsed().Seconds(), "samples/s")
			})
		}
		s.Close()
	}
}

// reset empties the cache.
func (c *PageCache) reset() { c.pages.reset() }

// readFloats selects the series of s matching ms and reads every float
// sample of their chunks, reusing *it; it returns the samples and series
// read.
func readFloats(b *testing.B, s *Segment, it *chunkenc.Iterator, ms ...*labels.Matcher) (samples, series int) {
	ss, err := s.Select(ms...)
	if err != nil {
		b.Fatal(err)
	}
	for ss.Next() {
		series++
		for _, cm := range ss.Chunks() {
			c, err := s.ReadChunk(cm.Ref)
			if err != nil {
				b.Fatal(err)
			}
			*it = c.Iterator(*it)
			for (*it).Next() == chunkenc.ValFloat {
				samples++
			}
		}
	}
	if err := ss.Err(); err != nil {
		b.Fatal(err)
	}
	return samples, series
}

// BenchmarkPageDecode verifies and decompresses every page of the chunks
// file of a compressed day segment of the TARGETS data (50 hosts): the
// cost a read pays on a page cache miss. Bytes are uncompressed bytes.
func BenchmarkPageDecode(b *testing.B) {
	blocks, _ := targetsBlocks(50, 12)
	s, err := Open(daySegment(b, blocks, false))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := s.chunkPages[0]
	b.SetBytes(int64(r.end - r.starts[0]))
	b.ReportAllocs()
	for b.Loop() {
		for i := range r.starts {
			if _, err := r.decode(context.Background(), i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(r.starts)), "ns/page")
}
