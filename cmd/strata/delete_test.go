package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestDeleteSeries deletes a range of one series across the head and a
// segment, checks that reads no longer see it while other series and other
// times stay, that later writes into the range are visible, and that the
// deletion survives compaction and a restart.
func TestDeleteSeries(t *testing.T) {
	dir := t.TempDir()
	blockA := time.Unix(1_700_000_000, 0).UTC().Truncate(2 * time.Hour)
	s := startServer(t, dir, "--storage.maintenance-interval", "1h")
	push := func(s *testServer, body []byte) {
		t.Helper()
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
	push(s, linesFor([]string{"a", "b"}, blockA, 360, func(h, i int) float64 { return float64(i) }))
	s.flush()
	push(s, linesFor([]string{"a", "b"}, blockA.Add(time.Hour), 10, func(h, i int) float64 { return 1000 + float64(i) })) // in the head, same block
	delStart, delEnd := blockA.Add(10*time.Minute), blockA.Add(time.Hour+30*time.Second)
	code, body := s.post("/api/v1/admin/tsdb/delete_series?"+url.Values{
		"match[]": {`rs_v{host="a"}`}, "start": {itoa64(delStart.Unix())}, "end": {itoa64(delEnd.Unix())},
	}.Encode(), "", nil)
	if code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	count := func(s *testServer, host string) int {
		t.Helper()
		var d queryData
		s.get("/api/v1/query", url.Values{"query": {`rs_v{host="` + host + `"}[3h]`}, "time": {itoa64(blockA.Add(2*time.Hour - time.Second).Unix())}}, &d)
		if len(d.Result) == 0 {
			return 0
		}
		return len(d.Result[0].Values)
	}
	// a: 360 + 10 samples minus those in [10m, 1h00m30s]: 60 before, 6 at
	// and after 1h00m40s.
	check := func(s *testServer, wantA int) {
		t.Helper()
		if got := count(s, "a"); got != wantA {
			t.Fatalf("host a: %d samples, want %d", got, wantA)
		}
		if got := count(s, "b"); got != 370 {
			t.Fatalf("host b: %d samples, want 370 (untouched)", got)
		}
	}
	check(s, 66)
	// A write into the deleted range after the delete is visible.
	push(s, []byte("rs,host=a v=5 "+itoa64(delStart.Add(time.Minute).Unix())+"\n"))
	check(s, 67)
	// Restart: compaction rewrites the tombstoned segments; nothing changes.
	s.stop()
	s = startServer(t, dir, "--storage.maintenance-interval", "50ms")
	check(s, 67)
	deadline := time.Now().Add(30 * time.Second)
	for len(s.rawSegments().Segments) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("tombstoned segments were not compacted: %+v", s.rawSegments().Segments)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check(s, 67)
}

func TestAdminAPIDisabledByDefault(t *testing.T) {
	s := startServer(t, "", "--enable-admin-api=false")
	for _, path := range []string{"/api/v1/admin/tsdb/flush", "/api/v1/admin/tsdb/delete_series?match[]=x", "/api/v1/admin/retention/run"} {
		code, body := s.post(path, "", nil)
		checkError(t, code, body, http.StatusForbidden, "unavailable", "--enable-admin-api")
	}
}
