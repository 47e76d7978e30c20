package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScrubQuarantinesDamagedSegment damages a published segment's chunks
// file under the running server, where no query reads it: the background
// scrub finds it by the file's CRC32C, takes it out of the set into
// segments/quarantine, logs an error naming it and reports it in
// strata_segments_scrub_corrupt_total and strata_segments_quarantined,
// while the other segment keeps answering. (A query that meets the damage
// before the scrub gets a 5xx naming the segment: TestDamagedChunks.)
func TestScrubQuarantinesDamagedSegment(t *testing.T) {
	dir := t.TempDir()
	blockA := time.Unix(1_700_000_000, 0).UTC().Truncate(2 * time.Hour)
	blockB := blockA.Add(2 * time.Hour)
	var logs logBuffer
	args := []string{"--listen-addr", "127.0.0.1:0", "--data-dir", dir, "--log.level", "info", "--enable-admin-api",
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0", "--storage.maintenance-interval", "1h", "--cache.enabled=false",
		"--storage.scrub.bytes-per-second", "64MiB", "--storage.scrub.pause", "50ms"}
	s := launch(t, dir, func(string) (string, bool) { return "", false }, &logs, args)
	for _, b := range []time.Time{blockA, blockB} {
		if code, resp := s.post("/write?precision=s", "text/plain", linesFor([]string{"a"}, b, 100, func(_, i int) float64 { return float64(i) })); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
		s.flush()
	}
	segs := s.status().Segments
	if len(segs) != 2 {
		t.Fatalf("want 2 segments, got %+v", segs)
	}
	for deadline := time.Now().Add(time.Minute); s.metric("", "strata_segments_scrub_passes_total") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the scrub did not pass twice over the sound segments")
		}
	}
	if got := s.metric("", "strata_segments_scrub_corrupt_total"); got != 0 {
		t.Fatalf("the scrub found %v damaged sound segments", got)
	}

	flipInPlace(t, filepath.Join(dir, "segments", segs[0].ID, "chunks", "000001"))
	s.waitMetric("", "strata_segments_scrub_corrupt_total", 1)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, "segments", "quarantine", segs[0].ID)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not quarantined by the scrub", segs[0].ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.metric("", "strata_segments_quarantined"); got != 1 {
		t.Fatalf("strata_segments_quarantined = %v, want 1", got)
	}
	if st := s.status(); len(st.Segments) != 1 || st.Segments[0].ID != segs[1].ID {
		t.Fatalf("segments after the scrub: %+v, want only %s", st.Segments, segs[1].ID)
	}
	// The error is logged once the segment has been moved, so it may
	// follow the directory's appearance in quarantine/.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		l := logs.String()
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, segs[0].ID) && strings.Contains(l, "background scrub") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error log names the damaged segment:\n%s", l)
		}
	}
	s.one("count_over_time(rs_v[2h])", blockB.Add(2*time.Hour-time.Second), 100)
}
