package segments

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

func TestRoundTrip(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) { testRoundTrip(t, f.opts) })
	}
}

func testRoundTrip(t *testing.T, opts WriterOptions) {
	parent := t.TempDir()
	series := genSeries(1, 300, 4)
	meta := writeTestSegmentWith(t, parent, Meta{}, series, opts)
	version := map[[2]bool]int{{false, false}: FormatVersionStatsFirst, {true, false}: FormatVersionCompressedStatsFirst,
		{false, true}: FormatVersionPlain, {true, true}: FormatVersionCompressed}[[2]bool{opts.Compress, opts.NoStats}]
	if opts.NoRuns {
		version = map[int]int{FormatVersionStatsFirst: FormatVersionStats, FormatVersionCompressedStatsFirst: FormatVersionCompressedStats}[version]
	}

	var nChunks, nSamples uint64
	mint, maxt := series[0].chunks[0].samples[0].T, int64(0)
	for _, s := range series {
		for _, c := range s.chunks {
			nChunks++
			nSamples += uint64(len(c.samples))
			mint = min(mint, c.samples[0].T)
			maxt = max(maxt, c.samples[len(c.samples)-1].T)
		}
	}
	want := Meta{ID: meta.ID, MinTime: mint, MaxTime: maxt, NumSeries: uint64(len(series)),
		NumSamples: nSamples, NumChunks: nChunks, Version: version,
		Compaction: CompactionMeta{Level: 1, Sources: []string{meta.ID}}}
	if !metaEqual(meta, want) {
		t.Fatalf("meta\n got %+v\nwant %+v", meta, want)
	}
	if !isULID(meta.ID) {
		t.Fatalf("generated id %q is not a ULID", meta.ID)
	}

	s := openT(t, filepath.Join(parent, meta.ID))
	if !metaEqual(s.Meta(), want) {
		t.Fatalf("opened meta\n got %+v\nwant %+v", s.Meta(), want)
	}
	if s.Dir() != filepath.Join(parent, meta.ID) {
		t.Fatalf("dir %s", s.Dir())
	}
	if got := s.Size(); got != dirSize(t, s.Dir()) {
		t.Fatalf("size %d, on disk %d", got, dirSize(t, s.Dir()))
	}
	got, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	equalSeries(t, series, got)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	testSelect(t, s, series)
	testLabelNamesValues(t, s, series)
}

func metaEqual(a, b Meta) bool {
	return a.ID == b.ID && a.MinTime == b.MinTime && a.MaxTime == b.MaxTime && a.Resolution == b.Resolution &&
		a.NumSeries == b.NumSeries && a.NumSamples == b.NumSamples && a.NumChunks == b.NumChunks &&
		a.Version == b.Version && a.Compaction.Level == b.Compaction.Level &&
		slices.Equal(a.Compaction.Sources, b.Compaction.Sources)
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var testMatchers = [][]*labels.Matcher{
	nil,
	{labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu_usage")},
	{labels.MustNewMatcher(labels.MatchEqual, "__name__", "no_such_metric")},
	{labels.MustNewMatcher(labels.MatchNotEqual, "job", "api")},
	{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-0[0-4]")},
	{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-(01|17|33|99)")},
	{labels.MustNewMatcher(labels.MatchRegexp, "instance", "host-.*7")},
	{labels.MustNewMatcher(labels.MatchNotRegexp, "mode", "idle|user")},
	{labels.MustNewMatcher(labels.MatchNotRegexp, "mode", ".*e.*")},
	{labels.MustNewMatcher(labels.MatchEqual, "env", "")},
	{labels.MustNewMatcher(labels.MatchNotEqual, "env", "")},
	{labels.MustNewMatcher(labels.MatchRegexp, "env", "prod|")},
	{labels.MustNewMatcher(labels.MatchRegexp, "env", ".*")},
	{labels.MustNewMatcher(labels.MatchRegexp, "env", ".+")},
	{labels.MustNewMatcher(labels.MatchNotRegexp, "env", "")},
	// A negative set of alternatives that matches the empty value: series
	// with env, but not prod.
	{labels.MustNewMatcher(labels.MatchNotRegexp, "env", "prod|")},
	{labels.MustNewMatcher(labels.MatchEqual, "nonexistent", "")},
	{labels.MustNewMatcher(labels.MatchEqual, "nonexistent", "x")},
	{labels.MustNewMatcher(labels.MatchNotEqual, "nonexistent", "x")},
	{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")},
	{
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "cpu_usage"),
		labels.MustNewMatcher(labels.MatchRegexp, "region", "eu-.*"),
		labels.MustNewMatcher(labels.MatchNotEqual, "env", "dev"),
	},
	{
		labels.MustNewMatcher(labels.MatchRegexp, "job", "api|db"),
		labels.MustNewMatcher(labels.MatchEqual, "tier", ""),
		labels.MustNewMatcher(labels.MatchNotRegexp, "instance", "host-1.*"),
	},
	{
		labels.MustNewMatcher(labels.MatchNotEqual, "job", "api"),
		labels.MustNewMatcher(labels.MatchNotEqual, "job", "db"),
		labels.MustNewMatcher(labels.MatchEqual, "env", ""),
	},
}

func matchAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

func testSelect(t *testing.T, s *Segment, series []testSeries) {
	for _, ms := range testMatchers {
		t.Run("select"+matchersString(ms), func(t *testing.T) {
			var want []testSeries
			for _, ts := range series {
				if matchAll(ts.lset, ms) {
					want = append(want, ts)
				}
			}
			it, err := s.Select(ms...)
			if err != nil {
				t.Fatal(err)
			}
			var got []testSeries
			for it.Next() {
				ts := testSeries{lset: it.Labels()}
				for _, cm := range it.Chunks() {
					if cm.Chunk != nil {
						t.Fatal("Select returned a loaded chunk")
					}
					c, err := s.ReadChunk(cm.Ref)
					if err != nil {
						t.Fatal(err)
					}
					tc := testChunk{kind: cm.Kind}
					ci := c.Iterator(nil)
					for ci.Next() == chunkenc.ValFloat {
						tt, v := ci.At()
						tc.samples = append(tc.samples, sample{tt, v})
					}
					ts.chunks = append(ts.chunks, tc)
				}
				got = append(got, ts)
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			equalSeries(t, want, got)
		})
	}
}

func matchersString(ms []*labels.Matcher) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.String())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func testLabelNamesValues(t *testing.T, s *Segment, series []testSeries) {
	for _, ms := range testMatchers {
		t.Run("labels"+matchersString(ms), func(t *testing.T) {
			names := map[string]bool{}
			values := map[string]map[string]bool{}
			for _, ts := range series {
				if !matchAll(ts.lset, ms) {
					continue
				}
				ts.lset.Range(func(l labels.Label) {
					names[l.Name] = true
					if values[l.Name] == nil {
						values[l.Name] = map[string]bool{}
					}
					values[l.Name][l.Value] = true
				})
			}
			gotNames, err := s.LabelNames(ms...)
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Sorted(maps.Keys(names)); !slices.Equal(gotNames, want) {
				t.Fatalf("label names: got %v, want %v", gotNames, want)
			}
			for _, name := range []string{"__name__", "instance", "env", "tier", "nonexistent"} {
				got, err := s.LabelValues(name, ms...)
				if err != nil {
					t.Fatal(err)
				}
				if want := slices.Sorted(maps.Keys(values[name])); !slices.Equal(got, want) {
					t.Fatalf("label values of %s: got %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestMultipleChunkFiles(t *testing.T) {
	parent := t.TempDir()
	series := genSeries(2, 50, 5)
	w, err := NewWriterWithOptions(parent, Meta{}, WriterOptions{MaxChunkFileSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range series {
		sd := ts.data(t)
		if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := openT(t, filepath.Join(parent, meta.ID))
	if n := len(s.chunkMaps); n < 5 {
		t.Fatalf("got %d chunks files, want several", n)
	}
	for _, b := range s.chunkMaps {
		if len(b) > 8<<10 {
			t.Fatalf("chunks file of %d bytes exceeds the limit", len(b))
		}
	}
	got, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	equalSeries(t, series, got)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestFixedTimeRangeAndLineage(t *testing.T) {
	parent := t.TempDir()
	series := genSeries(3, 5, 1)
	meta := writeTestSegment(t, parent, Meta{
		ID: "block-1", MinTime: testT0 - 1000, MaxTime: testT0 + 100*3_600_000, Resolution: 300_000,
		Compaction: CompactionMeta{Level: 2, Sources: []string{"a", "b"}},
	}, series)
	s := openT(t, filepath.Join(parent, "block-1"))
	m := s.Meta()
	if m.MinTime != testT0-1000 || m.MaxTime != testT0+100*3_600_000 || m.Resolution != 300_000 ||
		m.Compaction.Level != 2 || !slices.Equal(m.Compaction.Sources, []string{"a", "b"}) || !metaEqual(m, meta) {
		t.Fatalf("meta %+v", m)
	}
}

func TestEmptySegment(t *testing.T) {
	parent := t.TempDir()
	w, err := NewWriter(parent, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := openT(t, filepath.Join(parent, meta.ID))
	it, err := s.Select()
	if err != nil {
		t.Fatal(err)
	}
	if it.Next() || it.Err() != nil {
		t.Fatal("empty segment returned a series")
	}
	names, err := s.LabelNames()
	if err != nil || len(names) != 0 {
		t.Fatalf("label names %v, %v", names, err)
	}
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWriterValidation(t *testing.T) {
	parent := t.TempDir()
	w, err := NewWriter(parent, Meta{MinTime: 1000, MaxTime: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	chunk := func(ts ...int64) ChunkMeta {
		var smp []sample
		for _, tt := range ts {
			smp = append(smp, sample{tt, 1})
		}
		return ChunkMeta{Chunk: newXOR(t, smp)}
	}
	ok := []ChunkMeta{chunk(1000, 1100), chunk(1200, 1300)}
	if err := w.AddSeries(labels.FromStrings("a", "2"), ok); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		lset    labels.Labels
		chunks  []ChunkMeta
		ordered bool // want ErrOutOfOrder
	}{
		{"series before previous", labels.FromStrings("a", "1"), ok, true},
		{"same series", labels.FromStrings("a", "2"), ok, true},
		{"empty labels", labels.EmptyLabels(), ok, false},
		{"empty value", labels.FromStrings("a", "3", "b", ""), ok, false},
		{"duplicate name", labels.New(labels.Label{Name: "a", Value: "3"}, labels.Label{Name: "a", Value: "4"}), ok, false},
		{"no chunks", labels.FromStrings("a", "3"), nil, false},
		{"nil chunk", labels.FromStrings("a", "3"), []ChunkMeta{{}}, false},
		{"empty chunk", labels.FromStrings("a", "3"), []ChunkMeta{{Chunk: chunkenc.NewXORChunk()}}, false},
		{"chunks unsorted", labels.FromStrings("a", "3"), []ChunkMeta{ok[1], ok[0]}, true},
		{"chunks overlap", labels.FromStrings("a", "3"), []ChunkMeta{chunk(1000, 1500), chunk(1400, 1600)}, true},
		{"chunks share a timestamp", labels.FromStrings("a", "3"), []ChunkMeta{chunk(1000, 1100), chunk(1100, 1200)}, true},
		{"kinds unsorted", labels.FromStrings("a", "3"), []ChunkMeta{{Kind: KindSum, Chunk: ok[0].Chunk}, ok[1]}, true},
		{"invalid kind", labels.FromStrings("a", "3"), []ChunkMeta{{Kind: 42, Chunk: ok[0].Chunk}}, false},
		{"outside range", labels.FromStrings("a", "3"), []ChunkMeta{chunk(1900, 2001)}, false},
		{"min after max", labels.FromStrings("a", "3"), []ChunkMeta{{MinTime: 1500, MaxTime: 1400, Chunk: ok[0].Chunk}}, false},
	}
	for _, tc := range bad {
		err := w.AddSeries(tc.lset, tc.chunks)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if errors.Is(err, ErrOutOfOrder) != tc.ordered {
			t.Errorf("%s: %v, want ErrOutOfOrder=%v", tc.name, err, tc.ordered)
		}
	}
	// A chunk may end exactly at the segment's MaxTime.
	if err := w.AddSeries(labels.FromStrings("a", "2b"), []ChunkMeta{chunk(1900, 2000)}); err != nil {
		t.Fatalf("a chunk ending at the segment's MaxTime: %v", err)
	}
	// Kinds may repeat time ranges; the writer is still usable.
	if err := w.AddSeries(labels.FromStrings("a", "3"), []ChunkMeta{ok[0], {Kind: KindSum, Chunk: ok[0].Chunk}}); err != nil {
		t.Fatal(err)
	}
	meta, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if meta.NumSeries != 3 || meta.NumChunks != 5 || meta.NumSamples != 10 {
		t.Fatalf("meta %+v", meta)
	}
	if _, err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if err := w.AddSeries(labels.FromStrings("z", "1"), ok); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}

	for _, id := range []string{"..", "a/b", "quarantine", "x.tmp-1", strings.Repeat("a", 300)} {
		if _, err := NewWriter(parent, Meta{ID: id}); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if _, err := NewWriter(parent, Meta{ID: meta.ID}); !errors.Is(err, os.ErrExist) {
		t.Errorf("existing id: %v", err)
	}
}

func TestAcquireClose(t *testing.T) {
	parent := t.TempDir()
	meta := writeTestSegment(t, parent, Meta{}, genSeries(4, 3, 1))
	s, err := Open(filepath.Join(parent, meta.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(); err != nil {
		t.Fatal(err)
	}
	it, _ := s.Select()
	it.Next()
	ref := it.Chunks()[0].Ref
	closed := make(chan error)
	go func() { closed <- Remove(s) }()
	// Wait until Close waits for the reader (it holds mtx from setting
	// closing until cond.Wait releases it), so that Release must wake it.
	for {
		s.mtx.Lock()
		waiting := s.closing
		s.mtx.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	// Close must wait for the reader: reading still works.
	c, err := s.ReadChunk(ref)
	if err != nil {
		t.Fatal(err)
	}
	if c.NumSamples() != 120 {
		t.Fatalf("chunk has %d samples", c.NumSamples())
	}
	select {
	case err := <-closed:
		t.Fatalf("Remove returned while a reader holds the segment: %v", err)
	default:
	}
	s.Release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after close: %v", err)
	}
	if _, err := s.ReadChunk(ref); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := s.Select(); !errors.Is(err, ErrClosed) {
		t.Fatalf("select after close: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("parent not empty after Remove: %v", entries)
	}
}

func TestNewID(t *testing.T) {
	prev := ""
	for i := 0; i < 100; i++ {
		id := NewID(time.UnixMilli(int64(i) * 1000))
		if !isULID(id) || id <= prev {
			t.Fatalf("id %q after %q", id, prev)
		}
		prev = id
	}
	// The ULID spec's example timestamp encodes as 01ARYZ6S41.
	if id := NewID(time.UnixMilli(1469918176385)); !strings.HasPrefix(id, "01ARYZ6S41") {
		t.Fatalf("id %q", id)
	}
}

func TestConcurrentReads(t *testing.T) {
	parent := t.TempDir()
	series := genSeries(11, 60, 2)
	meta := writeTestSegment(t, parent, Meta{}, series)
	s := openT(t, filepath.Join(parent, meta.ID))
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			got, err := readAll(s)
			if err == nil && len(got) != len(series) {
				err = errors.New("short read")
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
