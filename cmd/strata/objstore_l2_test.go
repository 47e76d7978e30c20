package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/cache/redistest"
	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestObjectStorageL2Differential runs a writer and two --role=reader
// instances on one bucket, all three sharing one Redis L2 (the readers
// share extents with each other; the writer, whose answers hold its head
// and local segments too, shares tag generations with them). Writers send
// late samples (backfill into days already uploaded) to the writer in
// bursts; after each, the writer flushes and compacts them into local
// segments, and two seconds later uploads those (and deletes its local
// copies); the readers find them by listing the bucket. Meanwhile the
// readers have cached answers without them: only their own invalidation
// when they find the segments makes those misses. After each burst, the
// writer deletes an hour of a series: the readers learn of
// it from the tombstone object and from the rewrites of the segments
// concerned.
//
// It checks, under -race when the suite runs with it:
//   - every answer an instance serves through the cache equals that
//     instance's fresh answer (nocache=1), compared whenever nothing that
//     changes that instance's data happened during the pair of requests:
//     for the writer, a write in flight to the metric; for a reader, a
//     change of its catalog (strata_object_catalog_version, odd while one
//     is applied, grows otherwise);
//   - at the end, with every write uploaded and found, each reader's
//     cached answers equal the writer's fresh ones.
//
// The readers find a new segment at different moments; the partner rule
// (a reader takes from L2 no entry whose tags were bumped less than
// cache.l2.partner_lag ago) is what keeps one from serving what the other
// computed with or without it. It holds while both list within the lag:
// they list every 100 ms, with a lag of 5 s.
//
// It runs 20 s; STRATA_OBJ_DIFF_SECONDS sets another duration.
func TestObjectStorageL2Differential(t *testing.T) {
	dur := time.Duration(envInt(t, "STRATA_OBJ_DIFF_SECONDS", 20)) * time.Second
	srv := s3test.Start(t)
	srv.SetEnv(t)
	r := redistest.Start(t)
	day0 := time.Unix(1_700_000_000, 0).UTC().Truncate(24 * time.Hour)
	metrics := []string{"oq0", "oq1", "oq2"}
	var base bytes.Buffer
	for _, m := range metrics {
		for h := range 3 {
			for i := range 3 * 288 {
				fmt.Fprintf(&base, "%s,host=h%d v=%d %d\n", m, h, i*(h+1), day0.Add(time.Duration(i)*5*time.Minute).Unix())
			}
		}
	}
	l2 := []string{"--cache.enabled=true", "--cache.l2.redis-url", r.URL(), "--cache.l2.prefix", "obj:", "--cache.l2.partner-lag", "5s"}
	// Every segment flushed is final at once (its data is from 2023) and
	// is deleted locally once in the bucket: the writer reads it back
	// from there.
	w := startServer(t, "", append(objArgs(srv.URL("dw"), "--storage.object.upload-after", "1h", "--storage.local.keep", "1h",
		// Uploads when the test asks (and once at the start).
		"--storage.maintenance-interval", "1h", "--storage.object.upload-interval", "1h"), l2...)...)
	pushBoth(t, base.Bytes(), w)
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	readerArgs := append(objArgs(srv.URL("dw"), "--role", "reader"), l2...)
	readerArgs = append(readerArgs, "--storage.object.upload-interval", "100ms")
	rd := []*testServer{startServer(t, "", readerArgs...), startServer(t, "", readerArgs...)}
	servers := []*testServer{w, rd[0], rd[1]}
	waitL2(t, servers...)
	if code, body := w.post("/api/v1/admin/upload/run", "", nil); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, body)
	}
	for _, s := range rd {
		waitUntil(t, "the readers have listed the bucket", func() bool {
			return gaugeValue(s, "strata_object_bucket_segments") == float64(len(bucketSegments(srv, "dw")))
		})
	}

	client := &http.Client{Timeout: time.Minute}
	get := func(s *testServer, path string) (int, string, string, error) {
		resp, err := client.Get(s.url + path)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Strata-Cache"), string(b), err
	}
	// catalog returns a reader's strata_object_catalog_version.
	catalog := func(s *testServer) (int64, error) {
		code, _, body, err := get(s, "/metrics")
		if err != nil || code != http.StatusOK {
			return 0, fmt.Errorf("/metrics: %d %v", code, err)
		}
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "strata_object_catalog_version "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return int64(f), err
			}
		}
		return 0, fmt.Errorf("no strata_object_catalog_version in /metrics")
	}

	// vers[m] is odd while a write of metric m to the writer is in
	// flight, and grows with each write.
	vers := make([]atomic.Int64, len(metrics))
	var (
		stop                         = make(chan struct{})
		wg                           sync.WaitGroup
		compared                     [3]atomic.Int64
		skipped, writes, maintenance atomic.Int64
		deletes                      atomic.Int64
		statuses                     sync.Map // X-Strata-Cache → *atomic.Int64
	)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	// Writes come in bursts, each followed by a flush (which kicks an
	// upload round) and a quiet spell: the writer's own bumps of the late
	// samples' tags then precede the upload, and only the readers' bumps,
	// when they find the new segments, invalidate what they cached
	// meanwhile without those samples. A writer owns its series (host
	// w<n>) and never writes one timestamp twice.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		used := map[string]bool{}
		for seq := 1; !stopped(); {
			for range 20 {
				mi, wr := rng.Intn(len(metrics)), rng.Intn(2)
				// Inside the ranges the clients query (the first 7 h of
				// each day), so that what they cached before an upload
				// is what the upload changes.
				ts := day0.Add(time.Duration(rng.Intn(3))*24*time.Hour + time.Duration(rng.Intn(7*60))*time.Minute).Unix()
				if k := fmt.Sprint(mi, wr, ts); used[k] {
					continue
				} else {
					used[k] = true
				}
				seq++
				line := fmt.Sprintf("%s,host=w%d v=%d %d\n", metrics[mi], wr, wr*1_000_000+seq, ts)
				vers[mi].Add(1)
				resp, err := client.Post(w.url+"/write?precision=s", "text/plain", strings.NewReader(line))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				vers[mi].Add(1)
				if err != nil || resp.StatusCode != http.StatusNoContent {
					t.Errorf("write: %v %v", resp, err)
					return
				}
				writes.Add(1)
			}
			// A delete of an hour of one series: base data (only in
			// the bucket: a tombstone object, then a rewrite there) or
			// late samples (in local segments too).
			{
				mi := rng.Intn(len(metrics))
				from := day0.Add(time.Duration(rng.Intn(3))*24*time.Hour + time.Duration(rng.Intn(7))*time.Hour)
				q := url.Values{"match[]": {fmt.Sprintf(`%s_v{host=%q}`, metrics[mi], []string{"h0", "h1", "h2", "w0", "w1"}[rng.Intn(5)])},
					"start": {itoa64(from.Unix())}, "end": {itoa64(from.Add(time.Hour).Unix())}}
				vers[mi].Add(1)
				resp, err := client.Post(w.url+"/api/v1/admin/tsdb/delete_series?"+q.Encode(), "", nil)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				vers[mi].Add(1)
				if err != nil || resp.StatusCode/100 != 2 {
					t.Errorf("delete: %v %v", resp, err)
					return
				}
				deletes.Add(1)
			}
			// Flushed and compacted, the samples are in local segments;
			// the readers, which do not have them yet, cache answers
			// without them for two seconds; then they are uploaded.
			for _, path := range []string{"/api/v1/admin/tsdb/flush", "/api/v1/admin/compaction/run", "", "/api/v1/admin/upload/run", ""} {
				if path == "" {
					time.Sleep(2 * time.Second)
					continue
				}
				resp, err := client.Post(w.url+path, "", nil)
				if err != nil {
					t.Errorf("%s: %v", path, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					t.Errorf("%s: %d", path, resp.StatusCode)
					return
				}
			}
			maintenance.Add(1)
		}
	}()

	// Clients: each compares an instance's cached and fresh answers.
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c) + 100))
			for !stopped() {
				mi := rng.Intn(len(metrics))
				m := metrics[mi] + "_v" // line protocol: measurement_field
				// Few distinct queries, so that they repeat: an extent
				// cached before an upload is asked for again after it.
				q := []string{"sum by (host) (" + m + ")", "count_over_time(" + m + "[1h])"}[rng.Intn(2)]
				step := int64(300)
				start := day0.Add(time.Duration(rng.Intn(3)) * 24 * time.Hour)
				end := start.Add([]time.Duration{3 * time.Hour, 7 * time.Hour}[rng.Intn(2)])
				path := "/api/v1/query_range?" + url.Values{"query": {q}, "start": {itoa64(start.Unix())}, "end": {itoa64(end.Unix())}, "step": {itoa64(step)}}.Encode()
				i := rng.Intn(len(servers))
				s := servers[i]
				var v1, v2 int64
				var err error
				if i == 0 {
					v1 = vers[mi].Load()
				} else if v1, err = catalog(s); err != nil {
					t.Error(err)
					return
				}
				code1, st, cached, err1 := get(s, path)
				code2, _, fresh, err2 := get(s, path+"&nocache=1")
				if i == 0 {
					v2 = vers[mi].Load()
				} else if v2, err = catalog(s); err != nil {
					t.Error(err)
					return
				}
				if err1 != nil || err2 != nil || code1 != http.StatusOK || code2 != http.StatusOK {
					t.Errorf("%s on instance %d: %d %d %v %v %s %s", path, i, code1, code2, err1, err2, cached, fresh)
					return
				}
				if v1 != v2 || v1&1 == 1 {
					skipped.Add(1)
					continue
				}
				compared[i].Add(1)
				n, _ := statuses.LoadOrStore(st, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if answer(t, cached) != answer(t, fresh) {
					_, _, again, _ := get(s, path+"&nocache=1")
					t.Errorf("instance %d (0 is the writer), %s: cached answer (%s) differs from its fresh answer (versions %d; a later fresh answer equals the cached one: %t):\n%s\n%s",
						i, path, st, v1, answer(t, again) == answer(t, cached), cached, fresh)
					return
				}
			}
		}()
	}

	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Everything written is flushed and uploaded; once the readers have
	// found all of it, each one's cached answers are the writer's.
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	if code, body := w.post("/api/v1/admin/upload/run", "", nil); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, body)
	}
	lateSeen := false
	for _, m := range metrics {
		path := "/api/v1/query_range?" + url.Values{"query": {"sum by (host) (count_over_time(" + m + "_v[1h]))"},
			"start": {itoa64(day0.Unix())}, "end": {itoa64(day0.Add(3 * 24 * time.Hour).Unix())}, "step": {"3600"}}.Encode()
		_, _, want, err := get(w, path+"&nocache=1")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(want, `"host":"h2"`) {
			t.Fatalf("the writer does not answer the data written: %s", want)
		}
		if strings.Contains(want, `"host":"w`) {
			lateSeen = true
		}
		for i, s := range rd {
			waitUntil(t, fmt.Sprintf("reader %d answers %s as the writer", i, m), func() bool {
				code, _, got, err := get(s, path)
				return err == nil && code == http.StatusOK && answer(t, got) == answer(t, want)
			})
		}
	}
	if !lateSeen {
		t.Fatal("no late sample is in the writer's answers")
	}
	var sum []string
	statuses.Range(func(k, v any) bool {
		sum = append(sum, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	var l2hits []string
	for _, s := range servers {
		l2hits = append(l2hits, fmt.Sprint(statNum(s.cacheStatus(), "l2Hits")))
	}
	t.Logf("%v: %d writes, %d deletes, %d flushes, %d segments in the bucket; cached answers compared with fresh ones: writer %d, readers %d and %d (%s); %d comparisons skipped (a write or a catalog change in flight); L2 hits (writer, readers) %s",
		dur, writes.Load(), deletes.Load(), maintenance.Load(), len(bucketSegments(srv, "dw")), compared[0].Load(), compared[1].Load(), compared[2].Load(),
		strings.Join(sum, " "), skipped.Load(), strings.Join(l2hits, " "))
	if compared[0].Load() == 0 || compared[1].Load() == 0 || compared[2].Load() == 0 {
		t.Fatal("an instance was never checked")
	}
}

// gaugeValue returns the value of an unlabelled sample in s's /metrics,
// -1 when it is not there.
func gaugeValue(s *testServer, name string) float64 {
	code, body := s.do(mustGet(s.t, s.url+"/metrics"))
	if code != http.StatusOK {
		s.t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

// TestObjectStorageReaderInvalidation: a reader sharing the writer's L2
// caches an answer over a day in the bucket; the writer then gets late
// samples for that day (its bumps of their tags come before it uploads
// them, and the reader caches the answer again without them), flushes and
// uploads them. Once the reader has found the new segment, its cached
// answer holds the late samples.
func TestObjectStorageReaderInvalidation(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	r := redistest.Start(t)
	l2 := []string{"--cache.enabled=true", "--cache.l2.redis-url", r.URL(), "--cache.l2.prefix", "inv:", "--cache.l2.partner-lag", "5s"}
	w := startServer(t, "", append(objArgs(srv.URL("iw"), "--storage.object.upload-after", "1h",
		"--storage.maintenance-interval", "1h", "--storage.object.upload-interval", "1h"), l2...)...)
	objWrite(t, w.url, objT0, objT0.Add(2*24*time.Hour))
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	if code, body := w.post("/api/v1/admin/upload/run", "", nil); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, body)
	}
	rd := startServer(t, "", append(append(objArgs(srv.URL("iw"), "--role", "reader"), l2...), "--storage.object.upload-interval", "100ms")...)
	waitUntil(t, "the reader has listed the bucket", func() bool {
		return gaugeValue(rd, "strata_object_bucket_segments") == float64(len(bucketSegments(srv, "iw")))
	})
	q := url.Values{"query": {`count_over_time(obj_metric{i="a"}[1h])`}, "start": {objT0.Add(24 * time.Hour).Format(time.RFC3339)},
		"end": {objT0.Add(30 * time.Hour).Format(time.RFC3339)}, "step": {"1h"}}
	ask := func(s *testServer, v url.Values) string {
		code, body := s.do(mustGet(t, s.url+"/api/v1/query_range?"+v.Encode()))
		if code != http.StatusOK {
			t.Fatalf("query_range: %d %s", code, body)
		}
		return answer(t, body)
	}
	before := ask(rd, q)
	// Late samples of day 1, a minute after each of the first 6 hours'.
	var lines strings.Builder
	for h := range 6 {
		fmt.Fprintf(&lines, "obj_metric,i=a v=1 %d\n", objT0.Add(24*time.Hour+time.Duration(h)*time.Hour+time.Minute).Unix())
	}
	// The metric is obj_metric_v in line protocol: query that name too.
	pushBoth(t, []byte(lines.String()), w)
	qv := url.Values{"query": {`count_over_time(obj_metric_v[1h])`}, "start": q["start"], "end": q["end"], "step": q["step"]}
	stale := ask(rd, qv) // cached by the reader: the samples are not in the bucket yet
	if code, body := w.post("/api/v1/admin/tsdb/flush", "", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	if got := ask(rd, qv); got != stale {
		t.Fatalf("the reader's answer changed before the upload:\n%s\n%s", got, stale)
	}
	version := gaugeValue(rd, "strata_object_catalog_version")
	if code, body := w.post("/api/v1/admin/upload/run", "", nil); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, body)
	}
	waitUntil(t, "the reader finds the new segments", func() bool {
		v := gaugeValue(rd, "strata_object_catalog_version")
		return v > version && int64(v)%2 == 0 && gaugeValue(rd, "strata_object_bucket_segments") == float64(len(bucketSegments(srv, "iw")))
	})
	want := ask(w, withNocache(qv))
	if got := ask(rd, qv); got != want || got == stale {
		t.Fatalf("the reader's cached answer after it found the late samples' segment:\n%s\nwant (the writer's)\n%s\nstale\n%s", got, want, stale)
	}
	if got := ask(rd, q); got != before {
		t.Fatalf("an answer of another metric changed:\n%s\n%s", got, before)
	}
}
