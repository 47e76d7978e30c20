package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCompressedDaySegment writes three 2 h blocks of a past day, and a
// sample a day later so that the day is over: compaction merges the blocks
// into one day segment in format version 2 (zstd pages, on disk), queries
// answer from it exactly the samples written, and the page cache that
// read them shows on /metrics.
func TestCompressedDaySegment(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--storage.maintenance-interval", "20ms", "--cache.enabled=false")
	day := time.Now().UTC().Add(-72 * time.Hour).Truncate(24 * time.Hour)
	hosts := []string{"a", "b", "c"}
	value := func(h, i int) float64 { return float64((i*7 + h*13) % 101) }
	const perBlock = 720 // 2 h at 10 s
	for b := range 3 {
		t0 := day.Add(time.Duration(b) * 2 * time.Hour)
		if code, body := s.post("/write?precision=s", "text/plain", linesFor(hosts, t0, perBlock, func(h, i int) float64 { return value(h, b*perBlock+i) })); code != 204 {
			t.Fatalf("push: %d %s", code, body)
		}
		s.flush()
	}
	if code, body := s.post("/write?precision=s", "text/plain", linesFor(hosts[:1], day.Add(30*time.Hour), 1, value)); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	s.flush()

	// Wait for the day segment: one raw segment over the three blocks.
	var id string
	deadline := time.Now().Add(60 * time.Second)
	for id == "" {
		for _, seg := range s.rawSegments().Segments {
			if seg.MinTime == day.UnixMilli() && seg.Samples == 3*3*perBlock {
				id = seg.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no day segment after 60 s: %+v", s.rawSegments().Segments)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(dir, "segments", id, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Version int }
	// Version 7: compressed pages (version 2) with chunk statistics, hour
	// runs and first values.
	if err := json.Unmarshal(b, &meta); err != nil || meta.Version != 7 {
		t.Fatalf("day segment %s: version %d (%v), want 7", id, meta.Version, err)
	}

	// Every sample, as written.
	end := day.Add(6*time.Hour - 10*time.Second)
	body := s.rawQuery("/api/v1/query_range", url.Values{"query": {"rs_v"}, "start": {itoa64(day.Unix())},
		"end": {itoa64(end.Unix())}, "step": {"10"}, "nocache": {"1"}})
	var res struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Data.Result) != len(hosts) {
		t.Fatalf("%d series, want %d: %.300s", len(res.Data.Result), len(hosts), body)
	}
	for _, r := range res.Data.Result {
		h := int(r.Metric["host"][0] - 'a')
		if len(r.Values) != 3*perBlock {
			t.Fatalf("host %s: %d samples, want %d", r.Metric["host"], len(r.Values), 3*perBlock)
		}
		for i, v := range r.Values {
			if want := fmt.Sprint(value(h, i)); v[1] != want || v[0].(float64) != float64(day.Unix()+int64(i)*10) {
				t.Fatalf("host %s sample %d: %v, want %s at %d", r.Metric["host"], i, v, want, day.Unix()+int64(i)*10)
			}
		}
	}
	if n := s.metric("", "strata_segment_page_cache_misses_total"); n <= 0 {
		t.Fatalf("strata_segment_page_cache_misses_total %v after reading the day segment", n)
	}
	if n := s.metric("", "strata_segment_page_cache_bytes"); n <= 0 {
		t.Fatalf("strata_segment_page_cache_bytes %v after reading the day segment", n)
	}
}

// TestAdminCompactionRun: POST /api/v1/admin/compaction/run runs the
// compactions due now (here: three flushed blocks of a day that is over
// become one day segment) without waiting for the maintenance loop, which
// this server runs only once an hour.
func TestAdminCompactionRun(t *testing.T) {
	s := startServer(t, "", "--storage.maintenance-interval", "1h", "--cache.enabled=false")
	day := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	for b := range 3 {
		t0 := day.Add(time.Duration(b) * 2 * time.Hour)
		if code, body := s.post("/write?precision=s", "text/plain", linesFor([]string{"a"}, t0, 10, func(h, i int) float64 { return float64(i) })); code != 204 {
			t.Fatalf("push: %d %s", code, body)
		}
		s.flush()
	}
	// A day is over once data 2 h past its end exists (data time, as
	// Prometheus' compactor judges it): write one sample the next day.
	if code, body := s.post("/write?precision=s", "text/plain", linesFor([]string{"a"}, day.Add(30*time.Hour), 1, func(h, i int) float64 { return 1 })); code != 204 {
		t.Fatalf("push: %d %s", code, body)
	}
	s.flush()
	daySegments := func() (n, blocks int) {
		for _, seg := range s.rawSegments().Segments {
			if seg.MinTime >= day.UnixMilli() && seg.MinTime < day.Add(24*time.Hour).UnixMilli() {
				blocks++
				if seg.MaxTime-seg.MinTime > (2 * time.Hour).Milliseconds() {
					n++
				}
			}
		}
		return n, blocks
	}
	if n, blocks := daySegments(); n != 0 || blocks != 3 {
		t.Fatalf("before the run: %d day segments, %d segments of the day; want 0 and 3", n, blocks)
	}
	code, body := s.post("/api/v1/admin/compaction/run", "", nil)
	var res struct {
		Status string
		Data   struct{ Compactions int }
	}
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Data.Compactions < 1 {
		t.Fatalf("compaction run: %d %s (%v)", code, body, err)
	}
	if n, blocks := daySegments(); n != 1 || blocks != 1 {
		t.Fatalf("after the run: %d day segments, %d segments of the day; want 1 and 1: %+v", n, blocks, s.rawSegments().Segments)
	}
}
