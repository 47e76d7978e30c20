package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServerStartsOnDamagedData damages a segment and tears the tail of the
// write-ahead log while the server is down: the server must start, move the
// damaged segment aside, repair the log, and serve everything else.
func TestServerStartsOnDamagedData(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"a"}
	blockA := time.Unix(1_700_000_000, 0).UTC().Truncate(2 * time.Hour)
	s := startServer(t, dir, "--storage.maintenance-interval", "1h")
	push := func(s *testServer, body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	push(s, linesFor(hosts, blockA, 100, func(_, i int) float64 { return float64(i) }))
	s.flush()
	push(s, linesFor(hosts, blockA.Add(2*time.Hour), 100, func(_, i int) float64 { return float64(i) }))
	s.flush()
	segs := s.status().Segments
	if len(segs) != 2 {
		t.Fatalf("want 2 segments, got %d", len(segs))
	}
	s.stop()

	// Flip a byte in the middle of the first segment's index.
	index := filepath.Join(dir, "segments", segs[0].ID, "index")
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(index, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Tear the write-ahead log: half a record's worth of garbage at the end
	// of its last segment.
	walFiles, _ := filepath.Glob(filepath.Join(dir, "wal", "*"))
	if len(walFiles) == 0 {
		t.Fatal("no write-ahead log segment")
	}
	last := walFiles[len(walFiles)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0x02, 0x40, 0x00, 0x00, 0x13, 0x37}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = startServer(t, dir)
	st := s.status()
	if len(st.Segments) != 1 || st.Segments[0].ID != segs[1].ID {
		t.Fatalf("want only the undamaged segment %s, got %+v", segs[1].ID, st.Segments)
	}
	if _, err := os.Stat(filepath.Join(dir, "segments", "quarantine", segs[0].ID)); err != nil {
		t.Fatalf("damaged segment not quarantined: %v", err)
	}
	// The undamaged block still answers, and writes still work.
	var d queryData
	s.get("/api/v1/query_range", map[string][]string{
		"query": {"rs_v"}, "start": {itoa64(blockA.Add(2 * time.Hour).Unix())}, "end": {itoa64(blockA.Add(2*time.Hour).Unix() + 990)}, "step": {"10"},
	}, &d)
	if len(d.Result) != 1 || len(d.Result[0].Values) != 100 {
		t.Fatalf("undamaged block: %+v", d.Result)
	}
	push(s, linesFor(hosts, blockA.Add(4*time.Hour), 10, func(_, i int) float64 { return float64(i) }))
}
