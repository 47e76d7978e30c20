package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/cache/redistest"
)

// cacheStatus returns /api/v1/status/cache.
func (s *testServer) cacheStatus() map[string]any {
	s.t.Helper()
	var st map[string]any
	s.get("/api/v1/status/cache", nil, &st)
	return st
}

func statNum(st map[string]any, k string) uint64 {
	f, _ := st[k].(float64)
	return uint64(f)
}

// waitL2 waits until every server is connected to L2 and has applied the
// same last generation.
func waitL2(t *testing.T, ss ...*testServer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		gens := map[uint64]bool{}
		connected := true
		for _, s := range ss {
			st := s.cacheStatus()
			connected = connected && st["l2Connected"] == true
			gens[statNum(st, "generation")] = true
		}
		if connected && len(gens) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers not in sync over L2 after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushBoth sends the same write to every server, in turn, as an HA pair
// fed the same stream receives it.
func pushBoth(t *testing.T, body []byte, ss ...*testServer) {
	t.Helper()
	for _, s := range ss {
		if code, resp := s.post("/write?precision=s", "text/plain", body); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, resp)
		}
	}
}

// l2Pair is two Strata instances (separate data dirs) sharing the cache
// through one redis-server, as an HA pair does.
type l2Pair struct {
	r    *redistest.Server
	a, b *testServer
	args []string // the arguments both were started with
}

// startL2Pair starts a redis-server and two instances sharing it under
// prefix (with args added), waits until both are synced, sends both the
// same data and waits until both applied every generation it made.
func startL2Pair(t *testing.T, prefix string, data []byte, args ...string) *l2Pair {
	t.Helper()
	r := redistest.Start(t)
	all := append([]string{"--cache.l2.redis-url", r.URL(), "--cache.l2.prefix", prefix}, args...)
	p := &l2Pair{r: r, a: startServer(t, "", all...), b: startServer(t, "", all...), args: all}
	waitL2(t, p.a, p.b)
	pushBoth(t, data, p.a, p.b)
	waitL2(t, p.a, p.b)
	return p
}

// stampede sends n range queries at once, query i (its server and
// parameters) as query(i) says, and returns their bodies and
// X-Strata-Cache statuses; it fails the test if one is not answered 200.
func stampede(t *testing.T, n int, query func(i int) (*testServer, url.Values)) (bodies, statuses []string) {
	t.Helper()
	var wg sync.WaitGroup
	bodies, statuses = make([]string, n), make([]string, n)
	start := make(chan struct{})
	for i := range n {
		s, q := query(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Get(s.url + "/api/v1/query_range?" + q.Encode())
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("query: %d %s", resp.StatusCode, buf.String())
			}
			bodies[i], statuses[i] = buf.String(), resp.Header.Get("X-Strata-Cache")
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return bodies, statuses
}

// answer returns what must be equal between a cached and a fresh answer:
// the data and the warnings. (The frontend does not keep PromQL's info
// annotations, "infos", for cached extents; that is its own matter.)
func answer(t *testing.T, body string) string {
	t.Helper()
	var env struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("bad response %q: %v", body, err)
	}
	return fmt.Sprintf("%s %q", env.Data, env.Warnings)
}

func withNocache(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	out.Set("nocache", "1")
	return out
}

// minuteLines is line protocol for metric m: hosts h0… h<hosts-1>, n
// samples a minute apart from t0, host h's i-th valued i*(h+1).
func minuteLines(m string, t0 time.Time, hosts, n int) []byte {
	var b bytes.Buffer
	for h := range hosts {
		for i := range n {
			fmt.Fprintf(&b, "%s,host=h%d v=%d %d\n", m, h, i*(h+1), t0.Add(time.Duration(i)*time.Minute).Unix())
		}
	}
	return b.Bytes()
}

// TestL2TwoInstances runs two Strata instances (separate data dirs, the
// same writes) over one Redis: an extent computed by one is served by the
// other from L2, a late write invalidates it on both, cached answers equal
// fresh ones through either instance over random writes and queries, and
// killing Redis in the middle fails no request; once Redis is back, L2
// serves again.
func TestL2TwoInstances(t *testing.T) {
	// Every write reaches both before any query here: no partner lags,
	// and the partner rule (cache.TestL2PartnerBehind) would only keep the
	// instances from sharing for a minute after each late write.
	t0 := time.Unix(1_700_000_000, 0).UTC().Truncate(time.Hour)
	p := startL2Pair(t, "l2test:", linesFor([]string{"a", "b"}, t0, 360, func(h, i int) float64 { return float64(h*1000 + i) }), "--cache.l2.partner-lag", "0")
	r, a, b := p.r, p.a, p.b

	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	expect := func(s *testServer, want string, params url.Values) string {
		t.Helper()
		got, body := s.rangeStatus(params, nil)
		if got != want {
			t.Fatalf("X-Strata-Cache %q, want %q", got, want)
		}
		return body
	}

	// A computes and fills L2; B answers from L2 without computing.
	first := expect(a, "miss", q)
	before := b.cacheStatus()
	if got := expect(b, "hit", q); got != first {
		t.Fatalf("B's L2 answer differs:\n%s\n%s", first, got)
	}
	after := b.cacheStatus()
	if statNum(after, "l2Hits") != statNum(before, "l2Hits")+1 || statNum(after, "computations") != statNum(before, "computations") {
		t.Fatalf("B: l2Hits %v → %v, computations %v → %v", before["l2Hits"], after["l2Hits"], before["computations"], after["computations"])
	}
	expect(b, "hit", q) // now from B's L1
	if statNum(b.cacheStatus(), "l2Hits") != statNum(after, "l2Hits") {
		t.Fatal("B's second hit went to L2, not L1")
	}

	// A late write to both invalidates the extent on both.
	pushBoth(t, []byte("rs,host=a v=1000000 "+itoa64(t0.Add(30*time.Minute).Unix())+"\n"), a, b)
	newA := expect(a, "miss", q)
	if newA == first {
		t.Fatal("a late write did not change A's answer")
	}
	if _, newB := b.rangeStatus(q, nil); newB != newA {
		t.Fatalf("B answers differently from A after a late write:\n%s\n%s", newB, newA)
	}
	for _, s := range []*testServer{a, b} {
		if _, fresh := s.rangeStatus(withNocache(q), nil); answer(t, fresh) != answer(t, newA) {
			t.Fatal("the answer after the late write is not the fresh one")
		}
	}

	// Differential: random late writes (to both) and queries (through
	// either); every cached answer equals the fresh one. Redis is killed
	// a third of the way in and restarted at two thirds.
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seed := rng.Int63()
	rng = rand.New(rand.NewSource(seed))
	t.Logf("differential seed %d", seed)
	queries := []string{`sum by (host) (rs_v)`, `max(rs_v)`, `rate(rs_v[5m])`, `rs_v{host="b"}`, `avg_over_time(rs_v[10m])`}
	var params []url.Values
	for range 8 {
		start := t0.Add(time.Duration(rng.Intn(5)) * time.Hour)
		params = append(params, url.Values{
			"query": {queries[rng.Intn(len(queries))]},
			"start": {itoa64(start.Unix())},
			"end":   {itoa64(start.Add(time.Duration(1+rng.Intn(2)) * time.Hour).Unix())},
			"step":  {[]string{"60", "300"}[rng.Intn(2)]},
		})
	}
	const steps = 150
	statuses := map[string]int{}
	for i := range steps {
		switch i {
		case steps / 3:
			r.Stop()
			t.Log("redis killed")
		case 2 * steps / 3:
			r.Restart()
			t.Log("redis restarted")
		}
		if rng.Intn(6) == 0 {
			var body bytes.Buffer
			for range 1 + rng.Intn(3) {
				host := []string{"a", "b", "c"}[rng.Intn(3)]
				ts := t0.Add(time.Duration(rng.Intn(6*360)) * 10 * time.Second)
				fmt.Fprintf(&body, "rs,host=%s v=%d %d\n", host, rng.Intn(100000), ts.Unix())
			}
			pushBoth(t, body.Bytes(), a, b)
			continue
		}
		s := []*testServer{a, b}[rng.Intn(2)]
		p := params[rng.Intn(len(params))]
		st, cached := s.rangeStatus(p, nil)
		statuses[st]++
		if _, fresh := s.rangeStatus(withNocache(p), nil); answer(t, cached) != answer(t, fresh) {
			t.Fatalf("step %d (%s): cached answer (%s) differs from the fresh one for %v:\n%s\n%s", i, s.url, st, p, cached, fresh)
		}
	}
	t.Logf("differential: %d steps, query statuses %v; B: l2Hits=%v", steps, statuses, b.cacheStatus()["l2Hits"])

	// L2 serves again after the restart.
	waitL2(t, a, b)
	q2 := url.Values{"query": {`min(rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(2 * time.Hour).Unix())}, "step": {"120"}}
	fresh := expect(a, "miss", q2)
	before = b.cacheStatus()
	if got := expect(b, "hit", q2); got != fresh {
		t.Fatal("B's L2 answer after the Redis restart differs")
	}
	if after := b.cacheStatus(); statNum(after, "l2Hits") <= statNum(before, "l2Hits") {
		t.Fatalf("no L2 hit after the Redis restart: %v", after)
	}
	st := a.cacheStatus()
	t.Logf("A status: l2Hits=%v l2Misses=%v l2Errors=%v l2Resyncs=%v l2Writes=%v", st["l2Hits"], st["l2Misses"], st["l2Errors"], st["l2Resyncs"], st["l2Writes"])
	if statNum(st, "l2Errors") == 0 {
		t.Fatal("the Redis outage counted no L2 error")
	}
	// And /metrics exports the L2 counters.
	req, _ := http.NewRequest(http.MethodGet, a.url+"/metrics", nil)
	if _, body := a.do(req); !bytes.Contains([]byte(body), []byte("strata_cache_l2_errors_total")) ||
		!bytes.Contains([]byte(body), []byte("strata_cache_l2_hits_total")) {
		t.Fatal("/metrics lacks the L2 counters")
	}
}

// TestL2StampedeAcrossInstances sends many concurrent identical queries,
// each missing in the cache, spread over two instances, and counts the
// computations (engine evaluations of extents) on both: one per key is
// the target.
func TestL2StampedeAcrossInstances(t *testing.T) {
	// Three days of data, one sample a minute for 100 hosts: enough that
	// an extent takes a while to compute and misses really overlap.
	day0 := time.Unix(1_700_000_000, 0).UTC().Truncate(24 * time.Hour)
	// A Redis operation that times out is skipped (by design: the request
	// goes on without L2), which would let a second instance compute; on
	// a loaded machine 100 ms is not enough, and speed is not what this
	// test is about.
	// The partner rule is off: both instances have every write before
	// the queries (see TestL2TwoInstances).
	p := startL2Pair(t, "stampede:", minuteLines("st", day0, 100, 3*1440), "--cache.l2.timeout", "5s", "--cache.l2.partner-lag", "0")
	a, b := p.a, p.b
	settleMaintenance(t, a, b)

	// A miss computes without the shared lock, by design, when Redis
	// is slow or the instance's mirror lags the shared state (counted as
	// l2Unshared); a loaded machine makes that happen now and then. A
	// tag bumped while a round runs (nothing here writes, but a
	// background job might) invalidates the computations in flight, so
	// their waiters compute again, also by design. A round with such
	// fallbacks or bumps is run again with new keys (another step), up to
	// three times; a round with more computations than its fallbacks
	// explain fails at once, and so does a query that never gets a clean
	// round.
	sum := func(field string) uint64 { return statNum(a.cacheStatus(), field) + statNum(b.cacheStatus(), field) }
	for round, query := range []string{`sum by (host) (rate(st_v[30m]))`, `max_over_time(st_v[1h])`} {
		for attempt := 1; ; attempt++ {
			if stampedeRound(t, a, b, day0, round, query, 60*attempt, sum) {
				break
			}
			if attempt == 3 {
				t.Fatalf("round %d: no attempt without unshared computations in 3", round)
			}
		}
	}
}

// settleMaintenance runs, on each server, what its maintenance would run
// soon after the data arrived: the flush, the rollups (which bump the tags
// of the metric-days they cover, invalidating what is cached and being
// computed there) and the compaction. After it, with no writes, nothing
// bumps a tag: a test that counts computations is not disturbed by the
// first maintenance, which the machine's load may delay into it.
func settleMaintenance(t *testing.T, ss ...*testServer) {
	t.Helper()
	run := func(s *testServer, path string) string {
		code, body := s.post(path, "", nil)
		if code/100 != 2 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		return body
	}
	for _, s := range ss {
		run(s, "/api/v1/admin/tsdb/flush")
		// Until a run finds nothing to roll up (rollups are built from
		// compacted days, hour rollups from five-minute ones).
		for i := 0; ; i++ {
			run(s, "/api/v1/admin/compaction/run")
			if strings.Contains(run(s, "/api/v1/admin/downsample/run"), `"rollupsWritten":0`) {
				break
			}
			if i == 5 {
				t.Fatal("downsampling still writes rollups after 5 runs")
			}
		}
	}
	waitL2(t, ss...)
}

// stampedeRound runs one round of TestL2StampedeAcrossInstances with the
// given step and reports whether it was clean: one computation per key.
// It fails the test when computations exceed keys by more than the
// unshared fallbacks counted in the round.
func stampedeRound(t *testing.T, a, b *testServer, day0 time.Time, round int, query string, step int, sum func(string) uint64) bool {
	t.Helper()
	// One query per UTC day, so each request misses exactly one extent
	// (one key): the frontend evaluates a run of contiguous missing
	// extents in one call keyed by its first extent, which this test
	// does not measure. Every day is asked for 8 times, 4 on each
	// instance, at once.
	const keys = 3
	dayQuery := func(d int) url.Values {
		from := day0.Add(time.Duration(d) * 24 * time.Hour)
		return url.Values{"query": {query}, "start": {itoa64(from.Unix())}, "end": {itoa64(from.Add(24*time.Hour - time.Minute).Unix())}, "step": {strconv.Itoa(step)}}
	}
	comp := func() uint64 { return sum("computations") }
	waits := func() uint64 { return sum("l2LockWaits") }
	c0, w0, u0, g0 := comp(), waits(), sum("l2Unshared"), sum("generation")
	const n = 24
	bodies, statuses := stampede(t, n, func(i int) (*testServer, url.Values) { return []*testServer{a, b}[i%2], dayQuery(i % keys) })
	for i := range bodies {
		if bodies[i] != bodies[i%keys] {
			t.Fatalf("answers for day %d differ:\n%s\n%s", i%keys, bodies[i%keys], bodies[i])
		}
	}
	for d := range keys {
		if _, fresh := a.rangeStatus(withNocache(dayQuery(d)), nil); answer(t, fresh) != answer(t, bodies[d]) {
			t.Fatalf("the shared answer for day %d is not the fresh one", d)
		}
	}
	count := map[string]int{}
	for _, s := range statuses {
		count[s]++
	}
	computed, unshared, bumped := comp()-c0, sum("l2Unshared")-u0, sum("generation") != g0
	t.Logf("round %d, step %ds: %d concurrent requests over 2 instances, %d keys: %d computations (target %d), %d lock waits, %d unshared, tags bumped meanwhile: %t, X-Strata-Cache %v",
		round, step, n, keys, computed, keys, waits()-w0, unshared, bumped, count)
	if bumped {
		return false // computations invalidated in flight: their waiters computed again
	}
	if computed < keys || computed > keys+unshared {
		t.Fatalf("%d computations for %d keys with %d unshared; status A %v; B %v", computed, keys, unshared, a.cacheStatus(), b.cacheStatus())
	}
	return computed == keys
}

// TestL2ExtendDeduplicated (issue 21, 6): dashboard refreshes whose end
// moved forward need a cached extent extended; concurrent ones, spread
// over two instances, extend it once (one engine evaluation), as
// concurrent misses compute once.
func TestL2ExtendDeduplicated(t *testing.T) {
	// As in TestL2StampedeAcrossInstances: a slow machine must not turn a
	// Redis operation into a skipped one; the partner rule is off.
	day0 := time.Unix(1_700_000_000, 0).UTC().Truncate(24 * time.Hour)
	p := startL2Pair(t, "extend:", minuteLines("ex", day0, 100, 1440), "--cache.l2.timeout", "5s", "--cache.l2.partner-lag", "0")
	a, b := p.a, p.b
	settleMaintenance(t, a, b)

	// No annotations: the cached extent is extended, not recomputed.
	query := `max by (host) (avg_over_time(ex_v[30m]))`
	window := func(from, to time.Duration) url.Values {
		return url.Values{"query": {query}, "start": {itoa64(day0.Add(from).Unix())}, "end": {itoa64(day0.Add(to).Unix())}, "step": {"60"}}
	}
	evals := func() uint64 {
		return statNum(a.cacheStatus(), "extentEvaluations") + statNum(b.cacheStatus(), "extentEvaluations")
	}
	// The dashboard as first loaded: the day's extent holds 0-12 h.
	first := window(0, 12*time.Hour)
	if st, _ := a.rangeStatus(first, nil); st != "miss" {
		t.Fatalf("first load: %s", st)
	}
	if st, _ := b.rangeStatus(first, nil); st != "hit" {
		t.Fatalf("first load on B: %s", st)
	}
	// Refreshed 6 h later, 6 times on each instance at once.
	refresh := window(6*time.Hour, 18*time.Hour)
	e0 := evals()
	const n = 12
	bodies, statuses := stampede(t, n, func(i int) (*testServer, url.Values) { return []*testServer{a, b}[i%2], refresh })
	for i := range bodies {
		if bodies[i] != bodies[0] {
			t.Fatalf("answers differ:\n%s\n%s", bodies[0], bodies[i])
		}
	}
	if _, fresh := a.rangeStatus(withNocache(refresh), nil); answer(t, fresh) != answer(t, bodies[0]) {
		t.Fatal("the extended answer is not the fresh one")
	}
	count := map[string]int{}
	for _, s := range statuses {
		count[s]++
	}
	got := evals() - e0
	t.Logf("%d concurrent refreshes over 2 instances: %d engine evaluations (target 1), X-Strata-Cache %v", n, got, count)
	if got != 1 {
		t.Fatalf("%d engine evaluations to extend one extent for %d concurrent refreshes", got, n)
	}
}
