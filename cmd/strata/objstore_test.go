package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// objT0 is the start of the object storage tests' data: four days of a
// sample every 5 minutes; days 0-2 are over and compacted (final), day 3
// is not.
var objT0 = time.Date(2023, 11, 1, 0, 0, 0, 0, time.UTC)

const objSeries = 20

// objWriteBody is a remote write 1.0 body of the test series over [from, to).
func objWriteBody(t testing.TB, from, to time.Time) []byte {
	t.Helper()
	req := &prompb.WriteRequest{}
	for i := range objSeries {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "obj_metric"}, {Name: "i", Value: string(rune('a' + i))},
		}}
		for at := from; at.Before(to); at = at.Add(5 * time.Minute) {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(i*1000) + float64(at.Sub(objT0)/time.Minute)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func objWrite(t testing.TB, url string, from, to time.Time) {
	t.Helper()
	for d := from; d.Before(to); d = d.Add(24 * time.Hour) {
		end := d.Add(24 * time.Hour)
		if end.After(to) {
			end = to
		}
		postRemoteWrite(t, url, objWriteBody(t, d, end))
	}
}

// postRemoteWrite posts body, a snappy-compressed remote write 1.0
// request, to url's /api/v1/write and fails unless it is stored (200 or
// 204).
func postRemoteWrite(t testing.TB, url string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		t.Fatalf("write: %d", resp.StatusCode)
	}
}

// objArgs are the server flags of the object storage tests: 1h blocks
// compacted into days, rounds every 100 ms, no result cache (every query
// reads the storage), no rollups (a query reads raw data whenever it runs).
func objArgs(objURL string, more ...string) []string {
	return append([]string{"--storage.block-duration", "1h", "--storage.compaction-ranges", "1h,24h",
		"--storage.maintenance-interval", "50ms", "--storage.object.url", objURL, "--storage.object.upload-interval", "100ms",
		// A day's late segments merged in the round that can (the delay
		// is tested in segments/remote with a clock the test moves).
		"--storage.object.merge-after", "0s",
		// Replaced segments deleted from the bucket 5 s after: longer than
		// a reader's listing interval (100 ms) plus a query under load, as
		// operations.md asks, so that no reader, and no query of the
		// writer, reads a segment deleted under it (with 0 s, one that
		// listed it before its replacement fails reading it, as the
		// design says: TestBucketDeleteDelay).
		"--storage.object.delete-delay", "5s",
		"--cache.enabled=false", "--downsample.enabled=false"}, more...)
}

// objQueries are what the tests compare: a range query over all four
// days, and the series listing.
func objAnswers(s *testServer) (string, string) {
	s.t.Helper()
	rng := url.Values{"query": {`sum by (i) (rate(obj_metric[1h])) + on (i) group_left max_over_time(obj_metric[30m])`},
		"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(4 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"17m"}}
	code, a := s.do(mustGet(s.t, s.url+"/api/v1/query_range?"+rng.Encode()))
	if code != http.StatusOK {
		s.t.Fatalf("query_range: %d %s", code, a)
	}
	ser := url.Values{"match[]": {"obj_metric"}, "start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(4 * 24 * time.Hour).Format(time.RFC3339)}}
	code, b := s.do(mustGet(s.t, s.url+"/api/v1/series?"+ser.Encode()))
	if code != http.StatusOK {
		s.t.Fatalf("series: %d %s", code, b)
	}
	return a, b
}

func mustGet(t testing.TB, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// localSegments returns the IDs of the segments the server holds locally.
func localSegments(s *testServer) []string {
	s.t.Helper()
	var st struct {
		Segments []struct {
			ID string `json:"id"`
		} `json:"segments"`
	}
	s.get("/api/v1/status/tsdb", nil, &st)
	var ids []string
	for _, seg := range st.Segments {
		ids = append(ids, seg.ID)
	}
	return ids
}

// localSegmentsBefore returns the IDs of the segments the server holds
// locally that begin before end.
func localSegmentsBefore(s *testServer, end time.Time) []string {
	s.t.Helper()
	var st struct {
		Segments []struct {
			ID      string `json:"id"`
			MinTime int64  `json:"minTime"`
		} `json:"segments"`
	}
	s.get("/api/v1/status/tsdb", nil, &st)
	var ids []string
	for _, seg := range st.Segments {
		if seg.MinTime < end.UnixMilli() {
			ids = append(ids, seg.ID)
		}
	}
	return ids
}

// waitDaysSettled waits until the bucket under prefix holds days
// segments (one a day from objT0) and every segment of those days that
// the writer s holds locally is one of them, and returns their IDs.
// Before that the writer may still replace a day it uploaded, as the
// design allows: a flush that runs while the test writes (the server's
// own, due once the head spans more than a block and a half) copies one
// series after another, so samples of a day that a series gets after
// the flush copied it reach the next flush, after other series' later
// data; the day was final as the compactor saw it and is compacted again
// with them, the new segment uploaded and the first deleted.
func waitDaysSettled(t testing.TB, s *testServer, srv *s3test.Server, prefix string, days int) []string {
	t.Helper()
	var ids []string
	waitUntil(t, fmt.Sprintf("the bucket holds the %d days and the writer no other segment of them", days), func() bool {
		ids = bucketSegments(srv, prefix)
		return len(ids) == days && !slices.ContainsFunc(localSegmentsBefore(s, objT0.Add(time.Duration(days)*24*time.Hour)),
			func(id string) bool { return !slicesContains(ids, id) })
	})
	return ids
}

// bucketSegments returns the IDs of the segments whose marker is in the
// bucket under prefix.
func bucketSegments(srv *s3test.Server, prefix string) []string {
	var ids []string
	for _, k := range srv.Keys(prefix + "/segments/") {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix+"/segments/"), "/meta.json"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

// TestObjectStorageUploadEvictQuery: days compacted are uploaded; started
// again with storage.local.keep, the server deletes their local copies and
// answers the same queries exactly as it did from local disk, and, with
// samples in its head too, as a server without object storage holding
// the same data answers (head + local + bucket). With the bucket down, a query of bucket-only data gets a 503
// naming the bucket while ingest goes on and /readyz says so; back up,
// the answers are the same again.
func TestObjectStorageUploadEvictQuery(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	s := startServer(t, dir, objArgs(srv.URL("w1"))...)
	objWrite(t, s.url, objT0, objT0.Add(3*24*time.Hour+6*time.Hour))
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	// Days 0, 1, 2 compact into one segment each and are uploaded; day 3
	// is not over.
	waitDaysSettled(t, s, srv, "w1", 3)
	wantRange, wantSeries := objAnswers(s)
	if !strings.Contains(wantRange, `"i":"t"`) {
		t.Fatalf("the query finds no data: %s", wantRange)
	}
	s.stop()

	// Keep 1h of local data: every uploaded day leaves the disk.
	s = startServer(t, dir, objArgs(srv.URL("w1"), "--storage.local.keep", "1h", "--storage.object.cache-max-bytes", "1")...)
	uploaded := bucketSegments(srv, "w1")
	waitUntil(t, "uploaded days are deleted locally", func() bool {
		for _, id := range localSegments(s) {
			if slicesContains(uploaded, id) {
				return false
			}
		}
		return true
	})
	gotRange, gotSeries := objAnswers(s)
	if gotRange != wantRange || gotSeries != wantSeries {
		t.Fatalf("answers over bucket-only data differ from the local ones:\n%s\nwant\n%s", gotRange, wantRange)
	}
	// The head too: samples of day 3 written now are in the head alone
	// (an hour: under the block and a half that flushes by itself). The
	// answers over head, local day 3 and the bucket's days 0-2 are those of
	// a server without object storage that holds the same data on its
	// disk and in its head.
	h0, h1 := objT0.Add(3*24*time.Hour+6*time.Hour), objT0.Add(3*24*time.Hour+7*time.Hour)
	objWrite(t, s.url, h0, h1)
	ref := startServer(t, "", "--storage.block-duration", "1h", "--storage.compaction-ranges", "1h,24h", "--cache.enabled=false", "--downsample.enabled=false")
	objWrite(t, ref.url, objT0, objT0.Add(3*24*time.Hour+6*time.Hour))
	if code, body := ref.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	objWrite(t, ref.url, h0, h1)
	before := wantRange
	wantRange, wantSeries = objAnswers(ref)
	if wantRange == before {
		t.Fatal("the samples written to the head change no answer")
	}
	if gotRange, gotSeries = objAnswers(s); gotRange != wantRange || gotSeries != wantSeries {
		t.Fatalf("answers over head, local and bucket-only data differ from a local server's:\n%s\nwant\n%s", gotRange, wantRange)
	}
	ref.stop()

	srv.Stop()
	code, hdr, body := s.roundTrip(mustGet(t, s.url+"/api/v1/query_range?"+url.Values{"query": {"obj_metric"},
		"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(2 * time.Hour).Format(time.RFC3339)}, "step": {"5m"}}.Encode()))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "s3://strata/w1") {
		t.Fatalf("query of bucket-only data with the bucket down: %d %v %s", code, hdr, body)
	}
	// Ingest goes on (after the compared range, which it leaves alone).
	objWrite(t, s.url, objT0.Add(4*24*time.Hour+time.Hour), objT0.Add(4*24*time.Hour+2*time.Hour))
	waitUntil(t, "/readyz says the bucket is unreachable", func() bool {
		code, body := s.do(mustGet(t, s.url+"/readyz"))
		return code == http.StatusOK && strings.Contains(body, "unreachable")
	})
	code, metrics := s.do(mustGet(t, s.url+"/metrics"))
	if code != http.StatusOK || !strings.Contains(metrics, "strata_object_bucket_up 0") {
		t.Fatalf("metrics with the bucket down: %d, bucket_up line missing or not 0", code)
	}
	srv.Restart()
	waitUntil(t, "/readyz says the bucket is up", func() bool {
		_, body := s.do(mustGet(t, s.url+"/readyz"))
		return strings.Contains(body, ": up")
	})
	if gotRange, gotSeries = objAnswers(s); gotRange != wantRange || gotSeries != wantSeries {
		t.Fatal("answers after the bucket came back differ")
	}

	// A delete reaches the bucket-only days, and stays after a restart.
	count := func() string {
		var d struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		s.get("/api/v1/query", url.Values{"query": {`count_over_time(obj_metric{i=~"a|b"}[1d])`}, "time": {objT0.Add(48 * time.Hour).Format(time.RFC3339)}}, &d)
		var out []string
		for _, r := range d.Result {
			out = append(out, r.Metric["i"]+"="+fmt.Sprint(r.Value[1]))
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	if got := count(); got != "a=288,b=288" {
		t.Fatalf("before the delete: %s", got)
	}
	del := url.Values{"match[]": {`obj_metric{i="a"}`}, "start": {objT0.Add(24 * time.Hour).Format(time.RFC3339)}, "end": {objT0.Add(36 * time.Hour).Format(time.RFC3339)}}
	if code, body := s.post("/api/v1/admin/tsdb/delete_series?"+del.Encode(), "", nil); code/100 != 2 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if got := count(); got != "a=144,b=288" {
		t.Fatalf("after deleting half a bucket-only day of a: %s", got)
	}
	s.stop()
	s = startServer(t, dir, objArgs(srv.URL("w1"), "--storage.local.keep", "1h", "--storage.object.cache-max-bytes", "1")...)
	if got := count(); got != "a=144,b=288" {
		t.Fatalf("after a restart: %s", got)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestObjectStorageKillDuringUpload kills the server (SIGKILL) while an
// upload is midway (the proxy holds back the meta.json PUT, so the data
// objects are in the bucket and the marker is not): the half upload is
// invisible, and the restarted server completes it, byte for byte.
func TestObjectStorageKillDuringUpload(t *testing.T) {
	bin := strataBinary(t)
	srv := s3test.Start(t)
	srv.SetEnv(t)
	proxy := s3test.NewProxy(t, srv)
	proxy.HoldPuts("/meta.json")
	dir := t.TempDir()
	args := objArgs(proxy.URL("k"), "--storage.object.upload-after", "1h", "--enable-admin-api")
	p := startProcess(t, bin, dir, args...)
	ts := &testServer{t: t, url: p.url}
	objWrite(t, p.url, objT0, objT0.Add(2*time.Hour))
	if code, body := ts.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	waitUntil(t, "an upload reaches its meta.json", func() bool { return proxy.Held() > 0 })
	if ids := bucketSegments(srv, "k"); len(ids) != 0 {
		t.Fatalf("segments visible before their meta.json: %v", ids)
	}
	if keys := srv.Keys("k/segments/"); len(keys) == 0 {
		t.Fatal("no data object was uploaded before meta.json")
	}
	p.kill(t)

	args = objArgs(srv.URL("k"), "--storage.object.upload-after", "1h")
	p = startProcess(t, bin, dir, args...)
	defer p.kill(t)
	ts = &testServer{t: t, url: p.url}
	waitUntil(t, "the restarted server completes the upload", func() bool {
		ids := bucketSegments(srv, "k")
		return len(ids) > 0 && len(ids) == len(localSegments(ts))
	})
	for _, id := range bucketSegments(srv, "k") {
		localDir := filepath.Join(dir, "segments", id)
		err := filepath.WalkDir(localDir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(localDir, path)
			want, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			got := getObject(t, srv, "k/segments/"+id+"/"+filepath.ToSlash(rel))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: the bucket holds %d bytes that differ from the local %d", id, rel, len(got), len(want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func getObject(t *testing.T, srv *s3test.Server, key string) []byte {
	t.Helper()
	resp := srv.Get(t, key)
	return resp
}

// objRange answers a range query over [from, to].
func objRange(s *testServer, from, to time.Time) string {
	s.t.Helper()
	rng := url.Values{"query": {`sum by (i) (rate(obj_metric[1h])) + on (i) group_left max_over_time(obj_metric[30m])`},
		"start": {from.Format(time.RFC3339)}, "end": {to.Format(time.RFC3339)}, "step": {"17m"}}
	code, a := s.do(mustGet(s.t, s.url+"/api/v1/query_range?"+rng.Encode()))
	if code != http.StatusOK {
		s.t.Fatalf("query_range: %d %s", code, a)
	}
	return a
}

// TestObjectStorageReader: a --role=reader instance on the writer's bucket
// prefix answers, for the days uploaded, exactly what the writer answers;
// it refuses writes with 405; a day the writer uploads later appears in
// its answers once it lists the bucket again.
func TestObjectStorageReader(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	w := startServer(t, t.TempDir(), objArgs(srv.URL("rw"))...)
	objWrite(t, w.url, objT0, objT0.Add(3*24*time.Hour+6*time.Hour))
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	waitDaysSettled(t, w, srv, "rw", 3)
	r := startServer(t, t.TempDir(), objArgs(srv.URL("rw"), "--role", "reader")...)
	end := objT0.Add(3*24*time.Hour - time.Hour)
	want := objRange(w, objT0, end)
	if !strings.Contains(want, `"i":"t"`) {
		t.Fatalf("the writer finds no data: %s", want)
	}
	waitUntil(t, "the reader answers as the writer", func() bool {
		code, got := r.do(mustGet(t, r.url+"/api/v1/query_range?"+url.Values{"query": {`sum by (i) (rate(obj_metric[1h])) + on (i) group_left max_over_time(obj_metric[30m])`},
			"start": {objT0.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}, "step": {"17m"}}.Encode()))
		return code == http.StatusOK && got == want
	})
	code, body := r.post("/api/v1/write", "application/x-protobuf", objWriteBody(t, objT0, objT0.Add(time.Hour)))
	if code != http.StatusMethodNotAllowed || !strings.Contains(body, "reader") {
		t.Fatalf("write to a reader: %d %s", code, body)
	}

	// Day 3 is over once day 4 has data: the writer compacts and uploads
	// it, and the reader finds it by listing.
	objWrite(t, w.url, objT0.Add(3*24*time.Hour+6*time.Hour), objT0.Add(4*24*time.Hour+3*time.Hour))
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	waitDaysSettled(t, w, srv, "rw", 4) // day 3 too
	end = objT0.Add(4*24*time.Hour - time.Hour)
	want = objRange(w, objT0, end)
	waitUntil(t, "the reader answers as the writer over day 3", func() bool {
		return objRange(r, objT0, end) == want
	})
}
