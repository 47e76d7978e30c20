package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// rangedSeries is the number of series of TestObjectStorageRangedRead:
// enough that a day segment spans many of the read cache's 16 KiB blocks.
const rangedSeries = 2000

func rangedWrite(t testing.TB, u string, from, to time.Time) {
	t.Helper()
	for d := from; d.Before(to); d = d.Add(6 * time.Hour) {
		req := &prompb.WriteRequest{}
		for i := range rangedSeries {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "ranged_metric"}, {Name: "i", Value: fmt.Sprintf("s%04d", i)}}}
			for at := d; at.Before(d.Add(6*time.Hour)) && at.Before(to); at = at.Add(5 * time.Minute) {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(i%13) * float64(at.Sub(objT0)/time.Minute%97)})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		postRemoteWrite(t, u, snappy.Encode(nil, b))
	}
}

// TestObjectStorageRangedRead: days that only the bucket holds are read by
// ranged GETs. A query of one series answers as it did from local disk
// and fetches a small part of the bucket's bytes; asked again it fetches
// nothing; with the bucket down, a query of another series (the segments
// open, its chunks not cached) gets 503 naming the bucket; back up, it
// answers as it did locally.
func TestObjectStorageRangedRead(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	s := startServer(t, dir, objArgs(srv.URL("r1"))...)
	rangedWrite(t, s.url, objT0, objT0.Add(2*24*time.Hour+2*time.Hour))
	if code, body := s.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	waitDaysSettled(t, s, srv, "r1", 2)
	query := func(series string) (int, string) {
		q := url.Values{"query": {`ranged_metric{i="` + series + `"}`}, "start": {objT0.Format(time.RFC3339)},
			"end": {objT0.Add(2 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"7m"}}
		return s.do(mustGet(t, s.url+"/api/v1/query_range?"+q.Encode()))
	}
	answers := map[string]string{}
	for _, series := range []string{"s0007", "s1500"} {
		code, body := query(series)
		if code != http.StatusOK || !strings.Contains(body, series) {
			t.Fatalf("local query of %s: %d %s", series, code, body)
		}
		answers[series] = body
	}
	s.stop()
	var bucketBytes int64
	for _, k := range srv.Keys("r1/segments/") {
		bucketBytes += int64(len(srv.Get(t, k)))
	}

	s = startServer(t, dir, objArgs(srv.URL("r1"), "--storage.local.keep", "1h")...)
	uploaded := bucketSegments(srv, "r1")
	waitUntil(t, "uploaded days are deleted locally", func() bool {
		for _, id := range localSegments(s) {
			if slicesContains(uploaded, id) {
				return false
			}
		}
		return true
	})
	gets0, bytes0 := s.metric("", "strata_object_read_requests_total"), s.metric("", "strata_object_fetched_bytes_total")
	if code, body := query("s0007"); code != http.StatusOK || body != answers["s0007"] {
		t.Fatalf("query of bucket-only days: %d, differs from the local answer:\n%s\nwant\n%s", code, body, answers["s0007"])
	}
	gets1, bytes1 := s.metric("", "strata_object_read_requests_total"), s.metric("", "strata_object_fetched_bytes_total")
	t.Logf("one series over two bucket-only days: %v GETs, %v bytes of %d in the bucket", gets1-gets0, bytes1-bytes0, bucketBytes)
	if gets1 <= gets0 || (bytes1-bytes0)*2 > float64(bucketBytes) {
		t.Fatalf("one series: %v GETs, %v bytes fetched of %d", gets1-gets0, bytes1-bytes0, bucketBytes)
	}
	if code, body := query("s0007"); code != http.StatusOK || body != answers["s0007"] {
		t.Fatalf("again: %d %s", code, body)
	}
	if gets2 := s.metric("", "strata_object_read_requests_total"); gets2 != gets1 {
		t.Fatalf("the same query again made %v GETs", gets2-gets1)
	}

	srv.Stop()
	code, hdr, body := s.roundTrip(mustGet(t, s.url+"/api/v1/query_range?"+url.Values{"query": {`ranged_metric{i="s1500"}`},
		"start": {objT0.Format(time.RFC3339)}, "end": {objT0.Add(2 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"7m"}}.Encode()))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "s3://strata/r1") {
		t.Fatalf("query of chunks not cached with the bucket down: %d %v %s", code, hdr, body)
	}
	srv.Restart()
	waitUntil(t, "the bucket answers again", func() bool {
		code, body := query("s1500")
		return code == http.StatusOK && body == answers["s1500"]
	})
}
