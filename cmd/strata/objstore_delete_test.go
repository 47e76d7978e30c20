package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/cache/redistest"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestObjectStorageDeleteReachesReaders: a delete on the writer reaches
// two readers that share the bucket and a Redis L2 and had cached answers
// over the deleted samples: the writer uploads the delete as a tombstone
// object, each reader finds it by listing, hides the samples and
// invalidates the answers (its own and, through the L2, the shared ones),
// so fresh and cached answers both lose them. Meanwhile the writer's
// rewrite of the day is held back before its meta.json (a proxy), so
// that only the tombstone can have told the readers. Released, the
// rewrite replaces the day in the bucket and the original and the
// tombstone are deleted; the answers stay the same, and so they do after
// the readers and the writer restart. A reader refuses deletes.
func TestObjectStorageDeleteReachesReaders(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	r := redistest.Start(t)
	l2 := []string{"--cache.enabled=true", "--cache.l2.redis-url", r.URL(), "--cache.l2.prefix", "del:", "--cache.l2.partner-lag", "5s"}
	wdir := t.TempDir()
	proxy := s3test.NewProxy(t, srv)
	wargs := objArgs(proxy.URL("dw"), "--storage.local.keep", "1h")
	w := startServer(t, wdir, wargs...)
	objWrite(t, w.url, objT0, objT0.Add(3*24*time.Hour+6*time.Hour))
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	days := waitDaysSettled(t, w, srv, "dw", 3)
	waitUntil(t, "the uploaded days leave the writer's disk", func() bool {
		return len(localSegmentsBefore(w, objT0.Add(3*24*time.Hour))) == 0
	})

	rargs := append(append(objArgs(srv.URL("dw"), "--role", "reader"), l2...), "--storage.object.upload-interval", "100ms")
	rdirs := []string{t.TempDir(), t.TempDir()}
	readers := []*testServer{startServer(t, rdirs[0], rargs...), startServer(t, rdirs[1], rargs...)}
	for _, rd := range readers {
		waitUntil(t, "the reader has listed the bucket", func() bool { return gaugeValue(rd, "strata_object_bucket_segments") == 3 })
	}
	// Per series, the samples in day 1 and in the last 6 hours of day 0.
	count := func(s *testServer, nocache bool) string {
		t.Helper()
		q := url.Values{"query": {`count_over_time(obj_metric{i=~"a|b"}[30h])`}, "time": {objT0.Add(48 * time.Hour).Format(time.RFC3339)}}
		if nocache {
			q.Set("nocache", "1")
		}
		code, body := s.do(mustGet(t, s.url+"/api/v1/query?"+q.Encode()))
		if code != http.StatusOK {
			t.Fatalf("query: %d %s", code, body)
		}
		return answer(t, body)
	}
	before := count(w, true)
	if !strings.Contains(before, `"360"`) {
		t.Fatalf("the writer counts %s, want 360 samples a series", before)
	}
	for _, rd := range readers {
		for range 2 { // computed, then from the cache
			if got := count(rd, false); got != before {
				t.Fatalf("a reader counts\n%s\nthe writer\n%s", got, before)
			}
		}
	}

	// Half of day 1 of series a, only in the bucket.
	del := url.Values{"match[]": {`obj_metric{i="a"}`}, "start": {objT0.Add(24 * time.Hour).Format(time.RFC3339)}, "end": {objT0.Add(36 * time.Hour).Format(time.RFC3339)}}
	if code, body := readers[0].post("/api/v1/admin/tsdb/delete_series?"+del.Encode(), "", nil); code != http.StatusNotFound {
		t.Fatalf("delete on a reader: %d %s, want 404", code, body)
	}
	proxy.HoldPuts("/meta.json")
	if code, body := w.post("/api/v1/admin/tsdb/delete_series?"+del.Encode(), "", nil); code/100 != 2 {
		t.Fatalf("delete: %d %s", code, body)
	}
	waitUntil(t, "the writer's rewrite of day 1 waits on its meta.json", func() bool { return proxy.Held() > 0 })
	if got := srv.Keys("dw/tombstones/"); len(got) != 1 {
		t.Fatalf("tombstones in the bucket: %v, want one", got)
	}
	want := count(w, true)
	if want == before || !strings.Contains(want, `"215"`) || !strings.Contains(want, `"360"`) {
		t.Fatalf("the writer counts %s after the delete, want 215 samples of a (145 deleted) and 360 of b", want)
	}
	for i, rd := range readers {
		waitUntil(t, fmt.Sprintf("reader %d's cached answer loses the deleted samples", i), func() bool { return count(rd, false) == want })
		if got := count(rd, true); got != want {
			t.Fatalf("reader %d's fresh answer\n%s\nwant\n%s", i, got, want)
		}
	}

	if got := bucketSegments(srv, "dw"); !slices.Equal(got, days) {
		t.Fatalf("bucket segments %v while the rewrite is held, want %v", got, days)
	}

	// The writer applies the delete in the bucket: day 1 rewritten, the
	// original and the tombstone deleted. Each reader's catalog version
	// now (nothing changes in the bucket until the release) tells when it
	// has listed a change since.
	versions := make([]float64, len(readers))
	for i, rd := range readers {
		waitUntil(t, fmt.Sprintf("reader %d has applied its listing", i), func() bool {
			versions[i] = gaugeValue(rd, "strata_object_catalog_version")
			return int64(versions[i])%2 == 0
		})
	}
	proxy.Release()
	waitUntil(t, "day 1 is rewritten in the bucket and the tombstone is gone", func() bool {
		now := bucketSegments(srv, "dw")
		return len(now) == 3 && !slices.Equal(now, days) && len(srv.Keys("dw/tombstones/")) == 0
	})
	for i, rd := range readers {
		// Three segments after a change: the original is gone (the writer
		// deletes it after uploading the rewrite, and the tombstone after
		// that), so the reader lists the rewrite.
		waitUntil(t, fmt.Sprintf("reader %d lists the rewrite", i), func() bool {
			v := gaugeValue(rd, "strata_object_catalog_version")
			return v > versions[i] && int64(v)%2 == 0 && gaugeValue(rd, "strata_object_bucket_segments") == 3
		})
		if got, fresh := count(rd, false), count(rd, true); got != want || fresh != want {
			t.Fatalf("reader %d after the rewrite: cached\n%s\nfresh\n%s\nwant\n%s", i, got, fresh, want)
		}
	}

	// Restarts keep it deleted everywhere.
	for i := range readers {
		readers[i].stop()
		readers[i] = startServer(t, rdirs[i], rargs...)
	}
	w.stop()
	w = startServer(t, wdir, wargs...)
	if got := count(w, true); got != want {
		t.Fatalf("the restarted writer counts\n%s\nwant\n%s", got, want)
	}
	for i, rd := range readers {
		if got, fresh := count(rd, false), count(rd, true); got != want || fresh != want {
			t.Fatalf("restarted reader %d: cached\n%s\nfresh\n%s\nwant\n%s", i, got, fresh, want)
		}
	}
}
