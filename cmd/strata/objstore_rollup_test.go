package main

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestObjectStorageRollups: the 5m and 1h rollups of the days that are
// over are uploaded with the raw days; started again with
// storage.local.keep, the server deletes every local copy of those days
// and answers queries that read the rollups (a 1h step reads the 1h
// rollups, a 5m step the 5m ones, as X-Strata-Resolution says) exactly as
// it did from local disk, and so does a reader of the bucket. The
// queries end where the uploaded rollups do (day 2's rollup window ends
// at day 3's start and waits for day 4's data to be final): past it a
// reader reads raw data where the writer reads its local rollup.
func TestObjectStorageRollups(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	rollupArgs := []string{"--downsample.enabled=true", "--downsample.5m-to-1h-after", "48h"}
	s := startServer(t, dir, objArgs(srv.URL("ru"), rollupArgs...)...)
	objWrite(t, s.url, objT0, objT0.Add(3*24*time.Hour+6*time.Hour))
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	day2, day3 := objT0.Add(2*24*time.Hour), objT0.Add(3*24*time.Hour)
	// settled: every local segment of days 0-2 is in the bucket, and the
	// raw days are compacted (one segment each), with their rollups when
	// rollups is set (a rollup's window ends at a day's end, 00:00 after
	// it, included: the rollups of day 2 wait for day 4's data to be
	// final, and stay local).
	settled := func(rollups bool) bool {
		res := map[int64]int{}
		inBucket := bucketSegments(srv, "ru")
		for _, seg := range localSegmentsRes(s) {
			if seg.MaxTime >= day3.UnixMilli() {
				continue
			}
			if !slicesContains(inBucket, seg.ID) {
				return false
			}
			res[seg.Resolution]++
		}
		return res[0] == 3 && (!rollups || res[300000] >= 3 && res[3600000] >= 3)
	}
	waitUntil(t, "the raw days 0-2 are compacted and uploaded", func() bool { return settled(false) })
	if code, body := s.post("/api/v1/admin/downsample/run", "", nil); code != http.StatusOK {
		t.Fatalf("downsample/run: %d %s", code, body)
	}
	waitUntil(t, "the rollups of days 0-2 are uploaded", func() bool { return settled(true) })
	queries := []struct {
		q, step, res string
	}{
		{"max_over_time(obj_metric[1h])", "1h", "1h"},
		{"rate(obj_metric[1h])", "1h", "1h"},
		{"avg_over_time(obj_metric[5m])", "5m", "5m"},
	}
	answer := func(s *testServer, q, step, res string) (string, bool) {
		t.Helper()
		p := url.Values{"query": {q}, "step": {step}, "start": {objT0.Add(2 * time.Hour).Format(time.RFC3339)}, "end": {day2.Format(time.RFC3339)}}
		resp, err := http.DefaultClient.Do(mustGet(t, s.url+"/api/v1/query_range?"+p.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), resp.StatusCode == http.StatusOK && resp.Header.Get("X-Strata-Resolution") == res
	}
	want := map[string]string{}
	for _, q := range queries {
		body, ok := answer(s, q.q, q.step, q.res)
		if !ok || len(body) < 1000 {
			t.Fatalf("%s at %s from local disk: not read from the %s rollups, or no data: %.300s", q.q, q.step, q.res, body)
		}
		want[q.q] = body
	}
	s.stop()

	s = startServer(t, dir, objArgs(srv.URL("ru"), append(rollupArgs, "--storage.local.keep", "1h", "--storage.object.cache-max-bytes", "1")...)...)
	uploaded := bucketSegments(srv, "ru")
	waitUntil(t, "uploaded segments, rollups too, are deleted locally", func() bool {
		for _, id := range localSegments(s) {
			if slicesContains(uploaded, id) {
				return false
			}
		}
		return true
	})
	r := startServer(t, t.TempDir(), objArgs(srv.URL("ru"), append(rollupArgs, "--role", "reader")...)...)
	for _, inst := range []struct {
		name string
		s    *testServer
	}{{"the writer", s}, {"a reader", r}} {
		for _, q := range queries {
			waitUntil(t, inst.name+" answers "+q.q+" from the bucket's rollups as from local disk", func() bool {
				body, ok := answer(inst.s, q.q, q.step, q.res)
				return ok && body == want[q.q]
			})
		}
	}
}

type segmentRes struct {
	ID         string `json:"id"`
	MinTime    int64  `json:"minTime"`
	MaxTime    int64  `json:"maxTime"`
	Resolution int64  `json:"resolution"`
}

// localSegmentsRes returns the segments the server holds locally, with
// their time range and resolution.
func localSegmentsRes(s *testServer) []segmentRes {
	s.t.Helper()
	var st struct {
		Segments []segmentRes `json:"segments"`
	}
	s.get("/api/v1/status/tsdb", nil, &st)
	return st.Segments
}
