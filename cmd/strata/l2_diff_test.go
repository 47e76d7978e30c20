package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestL2ConcurrentDifferential runs two Strata instances sharing one
// Redis, with writers sending late samples to both (one after the other,
// as two remote-write queues deliver them), readers querying both through
// the cache and without it, and Redis faults injected all along: writes
// refused (maxmemory 1), FLUSHALL, DEL of each shared key in turn, a
// restart, CLIENT PAUSE, CLIENT KILL of normal and pub/sub connections.
//
// It checks, under -race when the suite runs with it:
//   - every answer served through the cache by an instance equals that
//     instance's fresh answer (nocache=1), compared whenever no write to
//     the queried metric was in flight to that instance during the pair
//     of requests (a per-instance, per-metric sequence lock says so); a
//     write may be acknowledged by one instance and not yet by the other;
//   - every query that starts after both instances acknowledged a write
//     sees it, through either instance.
//
// Writes refused with 503 (Redis refusing and l2-pending unwritable: the
// invalidation cannot be made durable) are retried until acknowledged,
// and count as in flight until then: refused after the append, their
// samples are stored.
//
// The partner rule (docs/scaling.md, "Read your writes in a pair") holds
// only while every write reaches the second instance within
// cache.l2.partner_lag of the first. A write whose second delivery comes
// later (retries of a 503 take a second each, and a loaded machine can
// stall a request) voids it for its metric: comparisons of that metric
// made while such a write is late, or within lagSettle after it, are
// skipped and counted (lagWatch).
//
// A pair of answers read at different resolutions (the instance's first
// rollups of the metric's days appeared between the two requests: raw
// data, then bucket averages) is not compared either, and is counted.
// Once a day is rolled up, a rollup built or rebuilt later does not
// change answers (late data is rolled up again at read, raw data past the
// newest rollup read as bucket aggregates).
//
// It runs 20 s; STRATA_L2_DIFF_SECONDS sets another duration.
func TestL2ConcurrentDifferential(t *testing.T) {
	dur := time.Duration(envInt(t, "STRATA_L2_DIFF_SECONDS", 20)) * time.Second
	day0 := time.Unix(1_700_000_000, 0).UTC().Truncate(24 * time.Hour)
	metrics := []string{"dq0", "dq1", "dq2"}
	var base bytes.Buffer
	for _, m := range metrics {
		for h := range 4 {
			for i := range 3 * 288 {
				fmt.Fprintf(&base, "%s,host=h%d v=%d %d\n", m, h, i*(h+1), day0.Add(time.Duration(i)*5*time.Minute).Unix())
			}
		}
	}
	const prefix = "diff:"
	// Each write reaches the second instance within milliseconds of the
	// first: a partner lag of 2 s holds, and lets extents be shared soon
	// after the writes that touch them.
	pair := startL2Pair(t, prefix, base.Bytes(), "--cache.l2.timeout", "250ms", "--cache.l2.partner-lag", diffPartnerLag.String())
	r, servers := pair.r, []*testServer{pair.a, pair.b}
	rc := r.Client()
	ctx := context.Background()

	// writes[m][i] counts the writes of metric m to instance i: both
	// writers write every metric, so a single counter made odd while a
	// write is in flight would read even with two in flight.
	writes := make([][2]writeCount, len(metrics))
	client := &http.Client{Timeout: time.Minute}
	var resolutions sync.Map // X-Strata-Resolution → *atomic.Int64
	// get returns the status, the X-Strata-Cache and X-Strata-Resolution
	// headers and the body of a GET.
	get := func(s *testServer, path string) (code int, cacheStatus, res, body string, err error) {
		resp, err := client.Get(s.url + path)
		if err != nil {
			return 0, "", "", "", err
		}
		defer resp.Body.Close()
		res = resp.Header.Get("X-Strata-Resolution")
		if res != "" {
			n, _ := resolutions.LoadOrStore(res, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Strata-Cache"), res, string(b), err
	}
	var (
		stop                          = make(chan struct{})
		wg                            sync.WaitGroup
		compared, skipped, rywChecked atomic.Int64
		refused, refusedStored        atomic.Int64 // writes answered 503; of them, after the append
		lateWrites, lagSkipped        atomic.Int64 // writes late to the second instance; comparisons skipped for them
		resSkipped                    atomic.Int64 // comparisons whose two answers read different resolutions
		lags                          = make([]lagWatch, len(metrics))
		statuses                      sync.Map // X-Strata-Cache → *atomic.Int64
	)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	// Writers: each owns its series (host w<n>) and never writes one
	// timestamp twice, so an acknowledged sample's value is known.
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + 1))
			// A series' timestamps: the first 16 h of three days, one a
			// minute. An extent reads the day before its own too (ranges,
			// lookback), so those of the third day stay valid and are
			// shared. A fast machine can use them all: the writer then
			// stops rather than look for a free one forever.
			const slots = 16 * 60
			used := make([]map[int64]bool, len(metrics))
			for i := range used {
				used[i] = map[int64]bool{}
			}
			for seq := 1; !stopped(); seq++ {
				if seq > slots*len(metrics) {
					return // every timestamp of every series written
				}
				mi := rng.Intn(len(metrics))
				for len(used[mi]) == slots {
					mi = (mi + 1) % len(metrics)
				}
				host := fmt.Sprintf("w%d", w)
				var ts int64
				for ts == 0 || used[mi][ts] {
					ts = day0.Add(time.Duration(rng.Intn(slots)) * time.Minute).Unix()
				}
				used[mi][ts] = true
				v := w*1_000_000 + seq
				line := fmt.Sprintf("%s,host=%s v=%d %d\n", metrics[mi], host, v, ts)
				order := []int{0, 1}
				if rng.Intn(2) == 0 {
					order = []int{1, 0}
				}
				lw := lags[mi].watch()
				for _, i := range order {
					// Sent until acknowledged, as a remote-write queue
					// does: a 503 (the invalidation could not be made
					// durable) may or may not have stored the samples,
					// so the write counts as in flight until a retry
					// is acknowledged.
					writes[mi][i].started.Add(1)
					code, err := writeUntilAcked(client, servers[i].url+"/write?precision=s", line, &refused, &refusedStored)
					writes[mi][i].finished.Add(1)
					if err != nil || code != http.StatusNoContent {
						t.Errorf("write: %d %v", code, err)
						return
					}
					if rng.Intn(4) == 0 {
						time.Sleep(time.Duration(rng.Intn(20)) * time.Millisecond) // a lagging queue
					}
				}
				if lw.done() {
					lateWrites.Add(1)
				}
				// Both acknowledged: a query through either sees it.
				s := servers[rng.Intn(2)]
				path := "/api/v1/query?" + url.Values{"query": {fmt.Sprintf("%s_v{host=%q}", metrics[mi], host)}, "time": {itoa64(ts)}}.Encode()
				code, st, _, body, err := get(s, path)
				if err != nil || code != http.StatusOK {
					t.Errorf("%s: %d %v %s", path, code, err, body)
					return
				}
				var env struct {
					Data struct {
						Result []struct {
							Value [2]any `json:"value"`
						} `json:"result"`
					} `json:"data"`
				}
				if err := json.Unmarshal([]byte(body), &env); err != nil {
					t.Error(err)
					return
				}
				if len(env.Data.Result) != 1 || env.Data.Result[0].Value[1] != strconv.Itoa(v) {
					t.Errorf("write %s{host=%s} = %d at %d acknowledged by both, not seen by %s (%s): %s", metrics[mi], host, v, ts, s.url, st, body)
					return
				}
				rywChecked.Add(1)
			}
		}()
	}

	// Readers.
	for rd := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(rd) + 100))
			for !stopped() {
				mi := rng.Intn(len(metrics))
				m := metrics[mi]
				q := []string{m + "_v", "sum by (host) (" + m + "_v)", "max_over_time(" + m + "_v[30m])", "avg_over_time(" + m + "_v[15m])"}[rng.Intn(4)]
				// Few distinct queries, so that they repeat: hits, and
				// extents extended by later ones.
				step := []int64{60, 300}[rng.Intn(2)]
				start := day0.Add(time.Duration(rng.Intn(22)) * 3 * time.Hour)
				end := start.Add([]time.Duration{time.Hour, 3 * time.Hour, 7 * time.Hour}[rng.Intn(3)])
				// At the resolution the server chooses: a 300 s step
				// reads 5m rollups once they are built, and late
				// samples under them are read at once (the day is
				// rolled up again from raw data until the downsampler
				// rebuilds it).
				path := "/api/v1/query_range?" + url.Values{"query": {q}, "start": {itoa64(start.Unix())}, "end": {itoa64(end.Unix())}, "step": {itoa64(step)}}.Encode()
				i := rng.Intn(2)
				s := servers[i]
				v1, idle := writes[mi][i].idle()
				l1 := lags[mi].begin()
				code1, st, res1, cached, err1 := get(s, path)
				code2, _, res2, fresh, err2 := get(s, path+"&nocache=1")
				v2 := writes[mi][i].started.Load()
				if err1 != nil || err2 != nil || code1 != http.StatusOK || code2 != http.StatusOK {
					t.Errorf("%s on %s: %d %d %v %v %s %s", path, s.url, code1, code2, err1, err2, cached, fresh)
					return
				}
				if !idle || v1 != v2 {
					skipped.Add(1)
					continue
				}
				if res1 != res2 {
					// The instance's first rollups of the metric's days
					// appeared between the two requests: the first was
					// answered from raw data, the second from rollups.
					resSkipped.Add(1)
					continue
				}
				if !lags[mi].clean(l1) {
					lagSkipped.Add(1)
					continue
				}
				compared.Add(1)
				n, _ := statuses.LoadOrStore(st, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if answer(t, cached) != answer(t, fresh) {
					// Tell a cache defect from a read that is not
					// repeatable: ask the engine again.
					_, _, _, again, _ := get(s, path+"&nocache=1")
					_, _, _, other, _ := get(servers[1-i], path+"&nocache=1")
					t.Errorf("the other instance's fresh answer equals the cached one: %t; writes late to the second instance so far: %d", answer(t, other) == answer(t, cached), lateWrites.Load())
					// What each instance holds of the metric, and the
					// resolution each answer is computed from now.
					for j, s2 := range servers {
						raw := "/api/v1/query?" + url.Values{"query": {m + "_v[3d]"}, "time": {itoa64(day0.Add(3 * 24 * time.Hour).Unix())}, "nocache": {"1"}}.Encode()
						_, _, _, body, _ := get(s2, raw)
						t.Errorf("instance %d holds: %s", j, body)
					}
					for _, p := range []string{path, path + "&nocache=1"} {
						if resp, err := client.Get(s.url + p); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							t.Errorf("%s now: X-Strata-Cache %s, X-Strata-Resolution %s", p, resp.Header.Get("X-Strata-Cache"), resp.Header.Get("X-Strata-Resolution"))
						}
					}
					t.Errorf("instance %d, %s: cached answer (%s) differs from its fresh answer (versions %d %d; a later fresh answer equals the cached one: %t, the first fresh one: %t):\n%s\n%s",
						i, path, st, v1, writes[mi][i].started.Load(), answer(t, again) == answer(t, cached), answer(t, again) == answer(t, fresh), cached, fresh)
					return
				}
			}
		}()
	}

	// Faults, one after the other, until the time is up.
	faults := []struct {
		name string
		do   func()
	}{
		{"refuse writes (maxmemory 1)", func() {
			if err := rc.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				t.Error(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if err := rc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Error(err)
			}
		}},
		{"FLUSHALL", func() { _ = rc.FlushAll(ctx).Err() }},
		{"DEL a shared key", nil}, // filled below
		{"restart", func() {
			r.Stop()
			time.Sleep(300 * time.Millisecond)
			r.Restart()
		}},
		{"CLIENT PAUSE 400 ms", func() { _ = rc.Do(ctx, "CLIENT", "PAUSE", "400").Err() }},
		{"CLIENT KILL normal", func() { _ = rc.Do(ctx, "CLIENT", "KILL", "TYPE", "normal").Err() }},
		{"CLIENT KILL pubsub", func() { _ = rc.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err() }},
		{"refuse writes, l2-pending unwritable", func() {
			// Writes whose invalidation cannot be made durable are
			// refused (503), before or after their append.
			var undo []string
			for _, s := range servers {
				path := filepath.Join(s.dataDir, "cache", "l2-pending")
				if err := os.MkdirAll(filepath.Join(path, "obstruction"), 0o755); err == nil {
					undo = append(undo, path)
				} // else l2-pending exists: bumps of the last outage not pushed yet
			}
			if err := rc.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				t.Error(err)
			}
			time.Sleep(1500 * time.Millisecond)
			for _, path := range undo {
				if err := os.RemoveAll(path); err != nil {
					t.Error(err)
				}
			}
			if err := rc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Error(err)
			}
		}},
	}
	delN := 0
	var deleted []string
	faults[2].do = func() {
		keys, err := rc.Keys(ctx, prefix+"{gen}*").Result()
		if err != nil || len(keys) == 0 {
			return
		}
		// Each kind of key in turn: sorted by what follows the epoch.
		kinds := map[string]string{}
		for _, k := range keys {
			kinds[k[strings.LastIndexByte(k, ':')+1:]] = k
		}
		names := []string{"epoch", "seq", "floor", "tags", "ckpt"}
		for range names {
			name := names[delN%len(names)]
			delN++
			if k, ok := kinds[name]; ok {
				_ = rc.Del(ctx, k).Err()
				deleted = append(deleted, name)
				return
			}
		}
	}
	// A DEL after every other fault, so that each shared key is lost in
	// turn several times.
	var order []int
	for i := range faults {
		if i != 2 {
			order = append(order, i, 2)
		}
	}
	deadline := time.Now().Add(dur)
	var done []string
	for i := 0; time.Now().Before(deadline) && !t.Failed(); i++ {
		f := faults[order[i%len(order)]]
		f.do()
		done = append(done, f.name)
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	var sum []string
	statuses.Range(func(k, v any) bool {
		sum = append(sum, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	var byRes []string
	resolutions.Range(func(k, v any) bool {
		byRes = append(byRes, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("range queries by the resolution they read: %s", strings.Join(byRes, " "))
	l2hits := statNum(servers[0].cacheStatus(), "l2Hits") + statNum(servers[1].cacheStatus(), "l2Hits")
	t.Logf("%v: %d faults (%d DEL: %v), %d cached answers compared with fresh ones (%s), %d comparisons skipped (a write in flight), %d skipped (the two answers read different resolutions), %d writes checked visible through either instance, %d L2 hits, %d writes refused (503; %d after their append) and retried, %d writes late to the second instance (%d comparisons skipped for them)",
		dur, len(done), len(deleted), deleted, compared.Load(), strings.Join(sum, " "), skipped.Load(), resSkipped.Load(), rywChecked.Load(), l2hits, refused.Load(), refusedStored.Load(), lateWrites.Load(), lagSkipped.Load())
	for i, s := range servers {
		st := s.cacheStatus()
		t.Logf("instance %d: hits=%v misses=%v computations=%v l2Hits=%v l2Misses=%v l2Errors=%v l2Resyncs=%v l2Writes=%v l2LockWaits=%v",
			i, st["hits"], st["misses"], st["computations"], st["l2Hits"], st["l2Misses"], st["l2Errors"], st["l2Resyncs"], st["l2Writes"], st["l2LockWaits"])
	}
	if t.Failed() {
		return
	}
	if compared.Load() == 0 || rywChecked.Load() == 0 {
		t.Fatal("nothing was checked")
	}
	// Redis is healthy again: the tier serves again on both.
	waitL2(t, servers...)
}

// writeUntilAcked posts body to url until it is answered with anything but
// 503, waiting as Retry-After says in between (at most 100 tries), and
// returns the last status. It counts the 503s in refused, and those that
// say the samples were stored in stored.
func writeUntilAcked(client *http.Client, url, body string, refused, stored *atomic.Int64) (int, error) {
	for try := 0; ; try++ {
		resp, err := client.Post(url, "text/plain", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || try == 100 {
			return resp.StatusCode, nil
		}
		refused.Add(1)
		if strings.Contains(string(b), "samples are stored") {
			stored.Add(1)
		}
		wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil {
			return resp.StatusCode, fmt.Errorf("503 without a valid Retry-After: %q %s", resp.Header.Get("Retry-After"), b)
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

// The partner lag the differential runs with, how long after its first
// delivery was sent a write counts as late to the second instance (half
// of it: the servers' bumps and the test's clock are not the same
// instant), and how long comparisons stay skipped after a late write is
// acknowledged (its bump may reach Redis only at the instance's next
// resync, after a fault ends).
const (
	diffPartnerLag = 2 * time.Second
	lagMargin      = diffPartnerLag / 2
	lagSettle      = 5 * time.Second
)

// lagWatch tracks the writes of one metric that are late to their second
// instance.
type lagWatch struct {
	late  atomic.Int64 // writes late now
	gen   atomic.Int64 // grows when a write becomes late and when it is acknowledged
	until atomic.Int64 // unix ns: comparisons begun before it are skipped
}

// lateWrite is one write being delivered to both instances.
type lateWrite struct {
	w     *lagWatch
	mu    sync.Mutex
	timer *time.Timer
	late  bool // guarded by mu
	over  bool // guarded by mu
}

// watch starts timing a write's delivery to both instances.
func (w *lagWatch) watch() *lateWrite {
	lw := &lateWrite{w: w}
	lw.timer = time.AfterFunc(lagMargin, func() {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		if !lw.over {
			lw.late = true
			w.late.Add(1)
			w.gen.Add(1)
		}
	})
	return lw
}

// done ends the delivery (both acknowledged, or given up) and reports
// whether the write was late.
func (lw *lateWrite) done() bool {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.over = true
	lw.timer.Stop()
	if !lw.late {
		return false
	}
	w := lw.w
	until := time.Now().Add(lagSettle).UnixNano()
	for {
		old := w.until.Load()
		if old >= until || w.until.CompareAndSwap(old, until) {
			break
		}
	}
	w.late.Add(-1)
	w.gen.Add(1)
	return true
}

// lagMark is what a comparison saw of a lagWatch when it began.
type lagMark struct {
	gen, late, until, at int64
}

func (w *lagWatch) begin() lagMark {
	return lagMark{gen: w.gen.Load(), late: w.late.Load(), until: w.until.Load(), at: time.Now().UnixNano()}
}

// clean reports whether no write of the metric was late during a
// comparison that began with m, nor settled less than lagSettle before.
func (w *lagWatch) clean(m lagMark) bool {
	return m.late == 0 && m.at >= m.until && w.gen.Load() == m.gen
}

// writeCount counts the writes of one metric to one instance, by several
// writers at once.
type writeCount struct {
	started, finished atomic.Int64
}

// idle returns the number of writes started, and whether none was in
// flight when it was read: finished is read first, and never exceeds
// started, so started equal to it means every write started so far had
// been acknowledged. A caller that finds started unchanged afterwards
// knows no write was in flight between the two reads.
func (w *writeCount) idle() (started int64, idle bool) {
	f := w.finished.Load()
	started = w.started.Load()
	return started, started == f
}
