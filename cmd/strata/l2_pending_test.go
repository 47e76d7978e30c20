package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Invalidations that Redis refuses are kept in <data_dir>/cache/l2-pending
// until Redis takes them (cache/l2_pending.go). These tests put Redis in
// its refusing state (maxmemory 1 with noeviction) and check what an
// instance answers when that file can, or cannot, be written.

// pendingPair starts an HA pair whose caches share one Redis, without the
// partner rule (both have every write before it is queried, except where
// a test says otherwise), and warms q: A computes it, B takes it from L2.
func pendingPair(t *testing.T, prefix string, t0 time.Time, q url.Values) *l2Pair {
	t.Helper()
	p := startL2Pair(t, prefix, linesFor([]string{"a", "b"}, t0, 360, func(h, i int) float64 { return float64(h*1000 + i) }), "--cache.l2.partner-lag", "0")
	if st, _ := p.a.rangeStatus(q, nil); st != "miss" {
		t.Fatalf("A's first query: %s", st)
	}
	if st, _ := p.b.rangeStatus(q, nil); st != "hit" {
		t.Fatalf("B's first query: %s, want hit from L2", st)
	}
	return p
}

// refuseWrites makes Redis refuse every write (on), or accept them again.
func (p *l2Pair) refuseWrites(t *testing.T, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	if err := p.r.Client().ConfigSet(context.Background(), "maxmemory", v).Err(); err != nil {
		t.Fatal(err)
	}
}

// obstructPending makes s's l2-pending unwritable whoever runs the test
// (root too): a directory, not empty, in its place. It returns the undo.
func obstructPending(t *testing.T, s *testServer) func() {
	t.Helper()
	path := filepath.Join(s.dataDir, "cache", "l2-pending")
	if err := os.MkdirAll(filepath.Join(path, "obstruction"), 0o755); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.RemoveAll(path); err != nil {
			t.Fatal(err)
		}
	}
}

// mustBeFresh fails unless s's answer to q through the cache equals its
// fresh one, and contains want (if not "").
func mustBeFresh(t *testing.T, what string, s *testServer, q url.Values, want string) {
	t.Helper()
	st, cached := s.rangeStatus(q, nil)
	_, fresh := s.rangeStatus(withNocache(q), nil)
	if answer(t, cached) != answer(t, fresh) {
		t.Fatalf("%s: cached answer (%s) differs from the fresh one:\n%s\n%s", what, st, cached, fresh)
	}
	if !strings.Contains(cached, want) {
		t.Fatalf("%s: the answer (%s) lacks %s: %s", what, st, want, cached)
	}
}

// TestL2PendingUnwritableRefusesWrite (issue 21): while Redis refuses
// writes, a late write whose invalidation cannot be kept on disk either
// is answered 503 with Retry-After and a message naming the file (on the
// old code: 204, and the invalidation lived only in memory). The
// invalidation made before the append already fails, so nothing is
// stored; a retry while the file is still unwritable is refused again;
// once it can be written the retry is acknowledged, and the bump survives
// a restart of the instance and reaches the partner when Redis is back.
// (A write whose invalidation fails only after the append, the samples
// stored, is refused the same way: the differential's "l2-pending
// unwritable" fault makes that happen, and its writers retry.)
func TestL2PendingUnwritableRefusesWrite(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	p := pendingPair(t, "unwritable:", t0, q)
	undo := obstructPending(t, p.a)
	p.refuseWrites(t, true)

	// A late write reaches A (B's queue is behind).
	late := []byte("rs,host=a v=777777 " + itoa64(t0.Add(30*time.Minute).Unix()) + "\n")
	for try := range 2 {
		req, _ := http.NewRequest(http.MethodPost, p.a.url+"/write?precision=s", strings.NewReader(string(late)))
		code, h, body := p.a.roundTrip(req)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "l2-pending") || !strings.Contains(body, "retry") {
			t.Fatalf("try %d: a write whose invalidation cannot be made durable: %d (Retry-After %q) %s; want 503 with Retry-After naming l2-pending", try, code, h.Get("Retry-After"), body)
		}
		// Refused before the append (the invalidation made ahead of
		// it could not be made durable): nothing stored, and A's answer
		// is its fresh one.
		mustBeFresh(t, "A after the refused write", p.a, q, "")
	}

	undo()
	if code, body := p.a.post("/write?precision=s", "text/plain", late); code != http.StatusNoContent {
		t.Fatalf("the retry once l2-pending can be written: %d %s", code, body)
	}
	mustBeFresh(t, "A after the acknowledged retry", p.a, q, "777777")
	// A restart before Redis is back (the in-memory bump is gone).
	p.a.stop()
	a := startServer(t, p.a.dataDir, p.args...)
	p.refuseWrites(t, false)
	waitL2(t, a, p.b)
	// The bump reached B: its entry from before is gone. (Asked before
	// A computes a new one, which B, with the partner rule off, would
	// take.)
	if st, _ := p.b.rangeStatus(q, nil); st != "miss" {
		t.Fatalf("B after A pushed the bump: %s, want miss", st)
	}
	// B's queue delivers the write too (which makes the entry B just
	// computed without it a miss: the partner rule is off here).
	if code, body := p.b.post("/write?precision=s", "text/plain", late); code != http.StatusNoContent {
		t.Fatalf("late write to B: %d %s", code, body)
	}
	mustBeFresh(t, "A restarted, Redis back", a, q, "777777")
	mustBeFresh(t, "B", p.b, q, "777777")
}

// TestL2PendingFreshDataDir (issue 21): on a fresh data dir there is no
// <data_dir>/cache before the first save of the cache; a bump refused by
// Redis then must still be kept on disk (on the old code it was not: the
// file could not be created, and the write was acknowledged), so that a
// restart before Redis is back serves no entry it invalidated.
func TestL2PendingFreshDataDir(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	p := pendingPair(t, "fresh:", t0, q)
	if _, err := os.Stat(filepath.Join(p.a.dataDir, "cache")); err == nil {
		t.Fatal("the cache directory exists before the first save: not the case this test is about")
	}
	p.refuseWrites(t, true)
	late := []byte("rs,host=a v=888888 " + itoa64(t0.Add(20*time.Minute).Unix()) + "\n")
	if code, body := p.a.post("/write?precision=s", "text/plain", late); code != http.StatusNoContent {
		t.Fatalf("late write: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(p.a.dataDir, "cache", "l2-pending")); err != nil {
		t.Fatalf("the refused bump is not on disk: %v", err)
	}
	p.a.stop()
	a := startServer(t, p.a.dataDir, p.args...)
	p.refuseWrites(t, false)
	waitL2(t, a, p.b)
	mustBeFresh(t, "A restarted, Redis back", a, q, "888888")
}

// TestL2PendingUnwritableReported (issue 21): delete_series and the admin
// cache invalidate and reset endpoints, made while Redis refuses writes
// and l2-pending cannot be written, answer 503 with Retry-After naming the
// file (on the old code: 204, the failure only logged); each is done on
// the instance all the same, and a retry once the file can be written is
// acknowledged.
func TestL2PendingUnwritableReported(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	p := pendingPair(t, "reported:", t0, q)
	undo := obstructPending(t, p.a)
	p.refuseWrites(t, true)

	reqs := []struct {
		name, method, path string
	}{
		{"invalidate a tag", http.MethodPost, "/api/v1/admin/cache/invalidate?" + url.Values{"tag": {"rs_v"}}.Encode()},
		{"invalidate by match[]", http.MethodPost, "/api/v1/admin/cache/invalidate?" + url.Values{"match[]": {"rs_v"}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}}.Encode()},
		{"reset", http.MethodDelete, "/api/v1/admin/cache"},
		{"delete_series", http.MethodPost, "/api/v1/admin/tsdb/delete_series?" + url.Values{"match[]": {`rs_v{host="b"}`}}.Encode()},
	}
	for _, r := range reqs {
		req, _ := http.NewRequest(r.method, p.a.url+r.path, nil)
		code, h, body := p.a.roundTrip(req)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "l2-pending") {
			t.Errorf("%s: %d (Retry-After %q) %s; want 503 with Retry-After naming l2-pending", r.name, code, h.Get("Retry-After"), body)
		}
	}
	if t.Failed() {
		return
	}
	// Done here all the same: the deleted series is gone from A's answers.
	st, cached := p.a.rangeStatus(q, nil)
	if strings.Contains(cached, `"host":"b"`) {
		t.Fatalf("A serves the deleted series (%s): %s", st, cached)
	}
	undo()
	for _, r := range reqs {
		req, _ := http.NewRequest(r.method, p.a.url+r.path, nil)
		if code, body := p.a.do(req); code != http.StatusNoContent {
			t.Errorf("%s, retried once l2-pending can be written: %d %s", r.name, code, body)
		}
	}
}
