package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCacheConcurrentDifferential is the cache's differential test over
// HTTP against the real server, with flushes, compactions and retention
// running in the background. Each round, several writers push current,
// late and out-of-order samples and deletes concurrently; once they are
// all acknowledged (writers quiesced, so the data state is fixed), several
// readers issue random range and instant queries (negative offsets, @ at
// fixed times near now, subqueries, functions that emit annotations)
// through the cache and with nocache=1, and the two answers must be
// identical byte for byte; every acknowledged write of the round (not
// deleted since) must be visible through the cache (read your writes).
// STRATA_CACHE_DIFF_OPS sets the number of operations: 4,000 by default,
// to keep the suite's time on 2 cores; the long form runs 10⁴ or more
// (STRATA_CACHE_DIFF_OPS=100000).
//
// It once failed in 2 of 7 runs with a series present in one answer and
// absent from the next while flushes ran: a query took the segment set
// before a flush published its segments and read the head after the flush
// dropped their data (query/consistency_test.go holds that race down, and
// buffer.Head.StartRead is the fix). And it failed every evening from
// 16:00 UTC, when, at the default downsampling age (40 h), the day two days
// back was rolled up: a rate at 5m answered from an extent (a piece of the
// range) after the rollups restarted the counter at its first raw sample
// instead of continuing the rollups' level, and extrapolated less
// (query.TestRollupPiecesEqualWhole); now days are rolled up an hour
// after they end, so rollups are read at any time of day.
func TestCacheConcurrentDifferential(t *testing.T) {
	ops := envInt(t, "STRATA_CACHE_DIFF_OPS", 4_000)
	s := startServer(t, "",
		"--storage.maintenance-interval", "100ms", "--storage.block-duration", "10m", "--storage.compaction-ranges", "10m,1h",
		"--retention.raw", "72h", "--retention.interval", "1s", "--cache.split-interval", "1h",
		// Days are rolled up an hour after they end (5m) and a day after
		// (1h), so that whatever the time of day some of the last two
		// days' data, late samples and deletes is read from rollups.
		"--downsample.raw-to-5m-after", "1h", "--downsample.5m-to-1h-after", "24h")
	const (
		writers, readers = 3, 4
		writesPerRound   = 40  // per writer
		queriesPerRound  = 100 // per reader
	)
	perRound := writers*writesPerRound + readers*queriesPerRound
	rounds := max(1, (ops+perRound-1)/perRound)
	type key struct {
		series string
		t      int64 // s
	}
	var (
		mu    sync.Mutex
		model = map[key]float64{} // acknowledged and not deleted
		seq   atomic.Int64
		nOps  atomic.Int64
		stats sync.Map // cache status → *atomic.Int64
		// Range queries asked again in later rounds (a dashboard reloaded
		// on a past window): the server answers them from stored answers
		// until a write or delete touches their data.
		pastMu sync.Mutex
		past   []string
	)
	client := &http.Client{Timeout: time.Minute}
	do := func(method, path string, body string) (int, string, string, error) {
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			return 0, "", "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		var sb strings.Builder
		_, err = fmt.Fprint(&sb, readAll(resp))
		// How it was answered: cache status and the data's resolution.
		return resp.StatusCode, resp.Header.Get("X-Strata-Cache") + "/" + resp.Header.Get("X-Strata-Resolution"), sb.String(), err
	}
	// Each writer owns its series (host w<writer>-h<n>), so the order of
	// its acknowledgements is the order of the model's updates.
	series := func(rng *rand.Rand, w int) (name, host string) {
		return fmt.Sprintf("cd%d", rng.Intn(3)), fmt.Sprintf("w%d-h%d", w, rng.Intn(2))
	}
	queries := func(now time.Time) []string {
		at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
		return []string{
			`cd0_v`, `sum by (host) (cd1_v)`, `cd2_v{host="w1-h1"}`,
			`cd0_v offset -10m`, `max_over_time(cd1_v[20m] offset -15m)`,
			`cd0_v @ ` + at(30*time.Second), `sum(cd1_v @ ` + at(-2*time.Minute) + `)`,
			`max_over_time(rate(cd2_v[5m])[30m:1m])`, `rate(cd1_v[5m])`, `histogram_quantile(0.9, cd0_v)`,
			`count_over_time(cd2_v[10m])`, `cd0_v - cd0_v offset 1h`,
		}
	}
	for round := range rounds {
		now := time.Now().UTC()
		// Writers.
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(round*100 + w)))
				for range writesPerRound {
					nOps.Add(1)
					if rng.Intn(40) == 0 { // delete a series over a past range
						name, host := series(rng, w)
						to := now.Add(-time.Duration(rng.Intn(48*60)) * time.Minute)
						from := to.Add(-time.Duration(1+rng.Intn(6*60)) * time.Minute)
						code, _, body, err := do(http.MethodPost, "/api/v1/admin/tsdb/delete_series?"+url.Values{
							"match[]": {name + `_v{host="` + host + `"}`}, "start": {itoa64(from.Unix())}, "end": {itoa64(to.Unix())},
						}.Encode(), "")
						if err != nil || code != http.StatusNoContent {
							t.Errorf("delete: %d %s %v", code, body, err)
							return
						}
						mu.Lock()
						for k := range model {
							if k.series == name+","+host && k.t >= from.Unix() && k.t <= to.Unix() {
								delete(model, k)
							}
						}
						mu.Unlock()
						continue
					}
					var ts time.Time
					switch rng.Intn(8) {
					case 0, 1, 2, 3: // current
						ts = now.Add(-time.Duration(rng.Intn(30)) * time.Second)
					case 4, 5: // late: minutes to two days old
						ts = now.Add(-time.Duration(1+rng.Intn(2*24*60)) * time.Minute)
					default: // out of order, on the minute grid
						ts = now.Add(-time.Duration(rng.Intn(48*60)) * time.Minute).Truncate(time.Minute)
					}
					name, host := series(rng, w)
					v := float64(seq.Add(1))
					code, _, body, err := do(http.MethodPost, "/write?precision=s", fmt.Sprintf("%s,host=%s v=%v %d\n", name, host, v, ts.Unix()))
					if err != nil || code != http.StatusNoContent {
						t.Errorf("write: %d %s %v", code, body, err)
						return
					}
					mu.Lock()
					model[key{name + "," + host, ts.Unix()}] = v
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Readers: the data state is fixed until the next round.
		qs := queries(now)
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(round*100 + 50 + r)))
				for range queriesPerRound {
					nOps.Add(1)
					q := qs[rng.Intn(len(qs))]
					var path string
					if rng.Intn(4) == 0 {
						ts := now.Add(-time.Duration(rng.Intn(2*24*3600)) * time.Second)
						if rng.Intn(3) == 0 {
							ts = now.Add(-time.Duration(rng.Intn(300)) * time.Second)
						}
						path = "/api/v1/query?" + url.Values{"query": {q}, "time": {itoa64(ts.Unix())}}.Encode()
					} else {
						steps := []time.Duration{15 * time.Second, time.Minute, 5 * time.Minute, time.Hour}
						step := steps[rng.Intn(len(steps))]
						end := now.Add(-time.Duration(rng.Intn(3)*rng.Intn(24*3600)) * time.Second).Truncate(step)
						length := min(time.Duration(1+rng.Intn(24*60))*time.Minute, 2000*step)
						path = "/api/v1/query_range?" + url.Values{"query": {q}, "start": {itoa64(end.Add(-length).Unix())},
							"end": {itoa64(end.Unix())}, "step": {itoa64(int64(step / time.Second))}}.Encode()
						pastMu.Lock()
						if len(past) > 0 && rng.Intn(3) == 0 {
							path = past[rng.Intn(len(past))]
						} else if past = append(past, path); len(past) > 16 {
							past = past[1:]
						}
						pastMu.Unlock()
					}
					code1, st, cached, err1 := do(http.MethodGet, path, "")
					code2, st2, fresh, err2 := do(http.MethodGet, path+"&nocache=1", "")
					if err1 != nil || err2 != nil {
						t.Errorf("%s: %v %v", path, err1, err2)
						return
					}
					if code1 != code2 || cached != fresh {
						// Tell a cache defect from a read that is not
						// repeatable: ask the engine again, twice.
						_, _, again1, _ := do(http.MethodGet, path+"&nocache=1", "")
						_, _, again2, _ := do(http.MethodGet, path+"&nocache=1", "")
						t.Errorf("later nocache=1 answers equal cached: %t %t, equal first nocache=1: %t %t",
							again1 == cached, again2 == cached, again1 == fresh, again2 == fresh)
						t.Errorf("round %d %s: cached (%d, %s) and fresh (%d, %s) differ:\n%s\n%s", round, path, code1, st, code2, st2, cached, fresh)
						explainDifference(t, do, path, cached, fresh)
						return
					}
					n, _ := stats.LoadOrStore(st, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Read your writes: a sample of the acknowledged, undeleted writes.
		mu.Lock()
		var check []key
		for k := range model {
			if len(check) == 20 {
				break
			}
			check = append(check, k)
		}
		want := make([]float64, len(check))
		for i, k := range check {
			want[i] = model[k]
		}
		mu.Unlock()
		for i, k := range check {
			name, host, _ := strings.Cut(k.series, ",")
			path := "/api/v1/query?" + url.Values{"query": {fmt.Sprintf(`%s_v{host=%q}`, name, host)}, "time": {itoa64(k.t)}}.Encode()
			code, st, body, err := do(http.MethodGet, path, "")
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s: %d %s %v", path, code, body, err)
			}
			var env struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatal(err)
			}
			if len(env.Data.Result) != 1 || env.Data.Result[0].Value[1] != strconv.FormatFloat(want[i], 'f', -1, 64) {
				t.Fatalf("round %d: acknowledged write %s at %d = %v not visible (%s): %s", round, k.series, k.t, want[i], st, body)
			}
		}
	}
	var summary []string
	stats.Range(func(k, v any) bool {
		summary = append(summary, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("%d rounds, %d operations; cached-path statuses: %s", rounds, nOps.Load(), strings.Join(summary, " "))
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// explainDifference tells, for the first point where a cached range
// answer differs from the fresh one, whether the engine's own answer there
// depends on the range it is evaluated in (the frontend evaluates extents
// apart): it asks the engine for that point over ranges ending, starting
// and cut around it, and reports each value.
func explainDifference(t *testing.T, do func(method, path, body string) (int, string, string, error), path, cached, fresh string) {
	t.Helper()
	type answer struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	var a, b answer
	u, err := url.Parse(path)
	if err != nil || json.Unmarshal([]byte(cached), &a) != nil || json.Unmarshal([]byte(fresh), &b) != nil {
		return // not a matrix: nothing to explain
	}
	q := u.Query()
	step, _ := strconv.ParseInt(q.Get("step"), 10, 64)
	start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
	end, _ := strconv.ParseInt(q.Get("end"), 10, 64)
	for i := range min(len(a.Data.Result), len(b.Data.Result)) {
		av, bv := a.Data.Result[i].Values, b.Data.Result[i].Values
		for j := range av {
			if j < len(bv) && av[j] == bv[j] {
				continue
			}
			ts, _ := av[j][0].(float64)
			at, metric := int64(ts), a.Data.Result[i].Metric
			t.Errorf("first difference: %v at %d (%s): cached %v", metric, at, time.Unix(at, 0).UTC(), av[j][1])
			hour := at - at%3600
			for _, r := range [][2]int64{{start, end}, {at, at}, {at - 3600, at}, {at, at + 3600}, {hour, hour + 3600 - step}, {start, at}, {at - 6*3600, at}, {at - 86400, at}} {
				_, st, body, err := do(http.MethodGet, "/api/v1/query_range?"+url.Values{"query": {q.Get("query")}, "start": {itoa64(r[0])},
					"end": {itoa64(r[1])}, "step": {q.Get("step")}, "nocache": {"1"}}.Encode(), "")
				var c answer
				if err != nil || json.Unmarshal([]byte(body), &c) != nil {
					t.Errorf("  nocache [%d, %d]: %v %s", r[0], r[1], err, body)
					continue
				}
				val := any("none")
				for _, s := range c.Data.Result {
					if fmt.Sprint(s.Metric) != fmt.Sprint(metric) {
						continue
					}
					for _, v := range s.Values {
						if f, _ := v[0].(float64); int64(f) == at {
							val = v[1]
						}
					}
				}
				t.Errorf("  nocache over [%s, %s] (%s): %v", time.Unix(r[0], 0).UTC().Format(time.DateTime), time.Unix(r[1], 0).UTC().Format(time.DateTime), st, val)
			}
			return
		}
	}
}
