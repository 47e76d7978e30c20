package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRetentionInvalidatesCachedAnswers: an answer cached from segments
// that retention then deletes must not be served again. The server's
// retention hook (server.invalidateDropped) bumps the cache tags of the
// deleted data; without it the next query would be a hit with the deleted
// samples.
func TestRetentionInvalidatesCachedAnswers(t *testing.T) {
	// A disk limit of one byte: the retention run drops every segment. No
	// maintenance runs by itself during the test.
	s := startServer(t, "", "--retention.max-bytes", "1", "--storage.maintenance-interval", "1h", "--retention.interval", "1h")
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	if code, body := s.post("/write?precision=s", "text/plain", linesFor([]string{"a", "b"}, t0, 360, func(h, i int) float64 { return float64(h*1000 + i) })); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, body)
	}
	s.flush() // Into a segment; the head keeps nothing of it.
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	expect := func(want string) string {
		t.Helper()
		got, body := s.rangeStatus(q, nil)
		if got != want {
			t.Fatalf("X-Strata-Cache %q, want %q: %s", got, want, body)
		}
		return body
	}
	before := expect("miss")
	if !strings.Contains(before, `"host":"b"`) {
		t.Fatalf("no data before retention: %s", before)
	}
	if again := expect("hit"); again != before {
		t.Fatal("hit differs from miss")
	}
	code, body := s.post("/api/v1/admin/retention/run", "", nil)
	if code != http.StatusOK || !strings.Contains(body, `"disk"`) {
		t.Fatalf("retention/run: %d %s, want segments dropped for disk", code, body)
	}
	after := expect("miss")
	if after == before || strings.Contains(after, `"host":"b"`) {
		t.Fatalf("after retention deleted the data the answer still holds it: %s", after)
	}
}
