package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// flipInPlace flips one byte in the middle of path without replacing the
// file, so that a server that has it mapped sees the change.
func flipInPlace(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	off := st.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedChunks damages a segment's chunks file twice: while the server
// runs, a query reading the chunk gets a 5xx naming the segment, which then
// leaves the set for segments/quarantine; while it is stopped, the start
// finds the damage by the file's CRC32C and quarantines the segment before
// any query meets it.
// The same with chunks of native histograms: a damaged histogram chunk is
// found by the same CRC and quarantined the same way.
func TestDamagedChunks(t *testing.T) {
	t.Run("floats", func(t *testing.T) {
		damagedChunks(t, "rs_v", func(t *testing.T, s *testServer, block time.Time) {
			if code, resp := s.post("/write?precision=s", "text/plain", linesFor([]string{"a"}, block, 100, func(_, i int) float64 { return float64(i) })); code != http.StatusNoContent {
				t.Fatalf("push: %d %s", code, resp)
			}
		})
	})
	t.Run("histograms", func(t *testing.T) {
		damagedChunks(t, "histogram_count(hx_latency_seconds)", func(t *testing.T, s *testServer, block time.Time) {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "hx_latency_seconds"}}}
			for i := range int64(100) {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(block.Add(time.Duration(i)*10*time.Second).UnixMilli(), hxHistogram(i)))
			}
			raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if code, resp := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code != http.StatusNoContent {
				t.Fatalf("push: %d %s", code, resp)
			}
		})
	})
}

// damagedChunks runs TestDamagedChunks on the data push writes into a
// block, read by expr.
func damagedChunks(t *testing.T, expr string, push func(*testing.T, *testServer, time.Time)) {
	dir := t.TempDir()
	blockA := time.Unix(1_700_000_000, 0).UTC().Truncate(2 * time.Hour)
	blockB := blockA.Add(2 * time.Hour)
	s := startServer(t, dir, "--storage.maintenance-interval", "1h", "--cache.enabled=false")
	for _, b := range []time.Time{blockA, blockB} {
		push(t, s, b)
		s.flush()
	}
	segs := s.status().Segments
	if len(segs) != 2 {
		t.Fatalf("want 2 segments, got %+v", segs)
	}
	rangeOf := func(b time.Time) string {
		return "/api/v1/query_range?" + url.Values{"query": {expr}, "start": {itoa64(b.Unix())}, "end": {itoa64(b.Unix() + 990)}, "step": {"10"}}.Encode()
	}

	flipInPlace(t, filepath.Join(dir, "segments", segs[0].ID, "chunks", "000001"))
	code, _, body := s.call(http.MethodGet, rangeOf(blockA), "", nil)
	if code < 500 || !strings.Contains(body, segs[0].ID) {
		t.Fatalf("query over a damaged chunk: %d %s; want a 5xx naming segment %s", code, body, segs[0].ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "segments", "quarantine", segs[0].ID)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not quarantined after the failed query", segs[0].ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.status(); len(st.Segments) != 1 || st.Segments[0].ID != segs[1].ID {
		t.Fatalf("segments after quarantine: %+v, want only %s", st.Segments, segs[1].ID)
	}
	if code, _, body := s.call(http.MethodGet, rangeOf(blockB), "", nil); code != http.StatusOK || !strings.Contains(body, `"values":[[`) {
		t.Fatalf("query over the sound segment: %d %s", code, body)
	}
	s.stop()

	flipInPlace(t, filepath.Join(dir, "segments", segs[1].ID, "chunks", "000001"))
	s = startServer(t, dir, "--storage.maintenance-interval", "1h", "--cache.enabled=false")
	if st := s.status(); len(st.Segments) != 0 {
		t.Fatalf("segments after a start on a damaged chunks file: %+v, want none", st.Segments)
	}
	if _, err := os.Stat(filepath.Join(dir, "segments", "quarantine", segs[1].ID)); err != nil {
		t.Fatalf("segment with a damaged chunks file not quarantined at start: %v", err)
	}
}
