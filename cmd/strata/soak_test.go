package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/internal/tmpfstest"
)

// The soak (docs/testing.md): STRATA_SOAK=10m go test ./cmd/strata -run
// TestSoak -timeout 30m. It does not run by default.

const soakBatch = 25 // samples per write request

// soakBase is the timestamp of sequence number 0; sample seq of a writer
// is at soakBase + seq seconds, with value seq.
var soakBase = time.Unix(1_700_000_000, 0).UTC()

// soakWriter pushes numbered samples of one series and remembers which
// requests were acknowledged.
type soakWriter struct {
	id   int
	next atomic.Int64 // next sequence number to send; set by the writer only

	mu    sync.Mutex
	acked []int64 // first sequence number of each acknowledged batch
}

func (w *soakWriter) ackedSince(from int) []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked[min(from, len(w.acked)):])
}

func (w *soakWriter) numAcked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// soakOutcome is one HTTP exchange of the soak.
type soakOutcome struct {
	start, end time.Time
	what       string
	code       int // 0: no answer (the server was down)
	body       string
}

// soakRun is the state shared by the soak's goroutines.
type soakRun struct {
	url atomic.Pointer[string] // the server's base URL now

	mu       sync.Mutex
	windows  [][2]time.Time // full-disk windows; an open one ends at the zero time
	outcomes map[string]map[int]int
	bad      []soakOutcome // 5xx outside full-disk windows
	in5xx    int           // 5xx inside full-disk windows
}

func (r *soakRun) base() string { return *r.url.Load() }

// record counts o and keeps it if it is a 5xx outside every full-disk
// window.
func (r *soakRun) record(o soakOutcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes[o.what] == nil {
		r.outcomes[o.what] = map[int]int{}
	}
	r.outcomes[o.what][o.code]++
	if o.code < 500 {
		return
	}
	for _, w := range r.windows {
		if !o.end.Before(w[0]) && (w[1].IsZero() || !o.start.After(w[1])) {
			r.in5xx++
			return
		}
	}
	r.bad = append(r.bad, o)
}

// do sends a request and records its outcome.
func (r *soakRun) do(client *http.Client, what, method, path, contentType string, body []byte) (int, string) {
	start := time.Now()
	req, err := http.NewRequest(method, r.base()+path, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	o := soakOutcome{start: start, what: what}
	resp, err := client.Do(req)
	if err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		o.code, o.body = resp.StatusCode, string(b)
	}
	o.end = time.Now()
	r.record(o)
	return o.code, o.body
}

// push sends the writer's next batch.
func (w *soakWriter) push(r *soakRun, client *http.Client) {
	first := w.next.Add(soakBatch) - soakBatch
	var b bytes.Buffer
	for seq := first; seq < first+soakBatch; seq++ {
		fmt.Fprintf(&b, "soak,w=%d seq=%d %d\n", w.id, seq, soakBase.Add(time.Duration(seq)*time.Second).Unix())
	}
	if code, _ := r.do(client, "write", http.MethodPost, "/write?precision=s", "text/plain", b.Bytes()); code == http.StatusNoContent {
		w.mu.Lock()
		w.acked = append(w.acked, first)
		w.mu.Unlock()
	}
}

// soakVerify checks that every sample of the batches starting at firsts
// (ascending) of writer w is readable with its value, querying in pieces.
func soakVerify(t *testing.T, base string, w *soakWriter, firsts []int64) {
	t.Helper()
	const piece = 20_000 // seconds of samples per query
	for len(firsts) > 0 {
		lo := firsts[0]
		n := sort.Search(len(firsts), func(i int) bool { return firsts[i] >= lo+piece })
		chunk := firsts[:n]
		firsts = firsts[n:]
		hi := chunk[len(chunk)-1] + soakBatch - 1
		at := soakBase.Add(time.Duration(hi) * time.Second)
		q := fmt.Sprintf(`soak_seq{w="%d"}[%ds]`, w.id, hi-lo+1)
		resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode())
		if err != nil {
			t.Fatalf("verify writer %d: %v", w.id, err)
		}
		var body struct {
			Data struct {
				Result []matrixSeries `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("verify writer %d: %d %v", w.id, resp.StatusCode, err)
		}
		present := map[int64]bool{}
		for _, s := range body.Data.Result {
			for _, p := range s.points(t) {
				seq := (p.T - soakBase.UnixMilli()) / 1000
				if p.V != float64(seq) {
					t.Fatalf("writer %d: sample %d has value %v", w.id, seq, p.V)
				}
				present[seq] = true
			}
		}
		for _, first := range chunk {
			for seq := first; seq < first+soakBatch; seq++ {
				if !present[seq] {
					t.Fatalf("writer %d: acknowledged sample %d is lost", w.id, seq)
				}
			}
		}
	}
}

// rssOf returns VmRSS and VmHWM of pid, in bytes.
func rssOf(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		for key, dst := range map[string]*int64{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				*dst = kb << 10
			}
		}
	}
	return rss, hwm
}

// fillFile writes path until the file system is full.
func fillFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0x5a}, 64<<10)
	for _, n := range []int{len(buf), 4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	return nil
}

// TestSoak runs the real binary for STRATA_SOAK (e.g. 10m) on a tmpfs the
// test mounts: four writers push numbered samples all along, a reader
// sends a mix of queries and listings and, every 20 s, a hostile query of
// 3,000 selectors over 2,000 series; the tmpfs fills up and empties twice
// (each time for a tenth of the run, across a kill); and the process is
// killed with SIGKILL every tenth of the run and restarted. Every
// acknowledged sample must be readable after every restart and at the
// end, no request may get a 5xx outside the full-disk windows, and the
// peak RSS of the last runs must stay within twice that of the first.
func TestSoak(t *testing.T) {
	d := os.Getenv("STRATA_SOAK")
	if d == "" {
		t.Skip("the soak runs only with STRATA_SOAK=<duration>, e.g. STRATA_SOAK=10m")
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("STRATA_SOAK: %v", err)
	}
	bin := strataBinary(t)
	mnt := tmpfstest.Mount(t, 96<<20)
	dataDir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	args := []string{"--storage.maintenance-interval", "1s", "--wal.segment-size", "8MiB", "--cache.enabled=false"}
	const cycles = 10
	killEvery := dur / cycles
	fullAt := []time.Duration{dur*2/10 + killEvery/2, dur*6/10 + killEvery/2}
	fullFor := killEvery

	run := &soakRun{outcomes: map[string]map[int]int{}}
	p := startProcess(t, bin, dataDir, args...)
	run.url.Store(&p.url)

	// 2,000 series for the hostile query, as in TestHostileQueriesBoundedMemory.
	hostileAt := soakBase.Add(time.Hour)
	var hb bytes.Buffer
	for i := range 2000 {
		for j := range 10 {
			fmt.Fprintf(&hb, "qp,i=%d,job=j%d v=%d %d\n", i, i%7, j, hostileAt.Add(-time.Duration(10-j)*time.Minute).Unix())
		}
	}
	if code, _, body := httpCall(t, http.MethodPost, p.url, "/write?precision=s", hb.Bytes()); code != http.StatusNoContent {
		t.Fatalf("write the hostile query's series: %d %s", code, body)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	writers := make([]*soakWriter, 4)
	for i := range writers {
		w := &soakWriter{id: i}
		writers[i] = w
		wg.Go(func() {
			client := &http.Client{Timeout: time.Minute}
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				w.push(run, client)
			}
		})
	}
	terms := func(n int, term string) string { return strings.TrimSuffix(strings.Repeat(term+" + ", n), " + ") }
	var hostile atomic.Int64
	wg.Go(func() {
		client := &http.Client{Timeout: 2 * time.Minute}
		lastHostile := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			now := soakBase.Add(time.Duration(writers[0].next.Load()) * time.Second)
			at := strconv.FormatInt(now.Unix(), 10)
			queries := []struct{ what, path string }{
				{"query", "/api/v1/query?" + url.Values{"query": {"sum by (w) (count_over_time(soak_seq[10m]))"}, "time": {at}}.Encode()},
				{"query_range", "/api/v1/query_range?" + url.Values{"query": {"rate(soak_seq[5m])"}, "start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)}, "end": {at}, "step": {"60"}}.Encode()},
				{"series", "/api/v1/series?" + url.Values{"match[]": {"soak_seq"}}.Encode()},
				{"labels", "/api/v1/labels"},
				{"label_values", "/api/v1/label/w/values"},
				{"status_tsdb", "/api/v1/status/tsdb"},
			}
			q := queries[i%len(queries)]
			run.do(client, q.what, http.MethodGet, q.path, "", nil)
			if time.Since(lastHostile) >= 20*time.Second {
				lastHostile = time.Now()
				hostile.Add(1)
				run.do(client, "hostile", http.MethodGet, "/api/v1/query?"+url.Values{"query": {terms(3000, "qp_v")}, "time": {strconv.FormatInt(hostileAt.Unix(), 10)}}.Encode(), "", nil)
			}
		}
	})

	// The full-disk windows.
	begin := time.Now()
	var diskErr atomic.Pointer[error]
	wg.Go(func() {
		for _, at := range fullAt {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(begin.Add(at))):
			}
			run.mu.Lock()
			run.windows = append(run.windows, [2]time.Time{time.Now()})
			run.mu.Unlock()
			if err := fillFile(filler); err != nil {
				diskErr.Store(&err)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(fullFor):
			}
			if err := os.Remove(filler); err != nil {
				diskErr.Store(&err)
				return
			}
			// The window ends once the server takes writes again.
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
				resp, err := http.Get(run.base() + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					err := errors.New("not ready 2 minutes after space returned")
					diskErr.Store(&err)
					return
				}
			}
			run.mu.Lock()
			run.windows[len(run.windows)-1][1] = time.Now().Add(time.Second) // requests in flight
			run.mu.Unlock()
		}
	})

	verified := make([]int, len(writers)) // acknowledged batches checked per writer
	type cycleFigures struct {
		peakRSS, lastRSS int64
		acked            int
		restart          time.Duration
	}
	var figures []cycleFigures
	for c := range cycles {
		next := begin.Add(time.Duration(c+1) * killEvery)
		var last int64
		for time.Now().Before(next) {
			if rss, _ := rssOf(p.cmd.Process.Pid); rss > 0 {
				last = rss
			}
			time.Sleep(min(time.Second, max(time.Until(next), 0)))
		}
		_, peak := rssOf(p.cmd.Process.Pid)
		// Everything acknowledged before the kill must survive it.
		before := make([][]int64, len(writers))
		for i, w := range writers {
			before[i] = w.ackedSince(verified[i])
		}
		p.kill(t)
		restartStart := time.Now()
		p = startProcess(t, bin, dataDir, args...)
		run.url.Store(&p.url)
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			if code, _, _ := httpCall(t, http.MethodGet, p.url, "/api/v1/status/buildinfo", nil); code == http.StatusOK {
				break // The API answers once the log is replayed.
			}
			if time.Now().After(deadline) {
				t.Fatal("the server did not answer 5 minutes after a restart")
			}
		}
		restart := time.Since(restartStart)
		total := 0
		for i, w := range writers {
			soakVerify(t, p.url, w, before[i])
			verified[i] += len(before[i])
			total += w.numAcked() * soakBatch
		}
		figures = append(figures, cycleFigures{peakRSS: peak, lastRSS: last, acked: total, restart: restart})
		t.Logf("cycle %d: killed at peak RSS %d MiB (last %d MiB); restarted and answering in %v; %d samples acknowledged, all present",
			c, peak>>20, last>>20, restart.Round(time.Millisecond), total)
		if p := diskErr.Load(); p != nil {
			t.Fatalf("full-disk window: %v", *p)
		}
	}
	close(stop)
	wg.Wait()
	if p := diskErr.Load(); p != nil {
		t.Fatalf("full-disk window: %v", *p)
	}

	// Everything, once more, from a fresh process.
	p.kill(t)
	p = startProcess(t, bin, dataDir, args...)
	defer p.kill(t)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if code, _, _ := httpCall(t, http.MethodGet, p.url, "/api/v1/status/buildinfo", nil); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not answer 5 minutes after the last restart")
		}
	}
	total := 0
	for _, w := range writers {
		all := w.ackedSince(0)
		soakVerify(t, p.url, w, all)
		total += len(all) * soakBatch
	}

	run.mu.Lock()
	defer run.mu.Unlock()
	t.Logf("%d acknowledged samples, none lost; %d hostile queries; outcomes by kind and status: %v", total, hostile.Load(), run.outcomes)
	for _, w := range run.windows {
		t.Logf("full-disk window %s to %s (%v)", w[0].Sub(begin).Round(time.Second), w[1].Sub(begin).Round(time.Second), w[1].Sub(w[0]).Round(time.Second))
	}
	t.Logf("%d 5xx inside the full-disk windows, %d outside", run.in5xx, len(run.bad))
	for i, o := range run.bad {
		if i == 10 {
			break
		}
		t.Errorf("5xx outside the full-disk windows: %s at %s: %d %.300s", o.what, o.start.Sub(begin).Round(time.Millisecond), o.code, o.body)
	}
	if run.outcomes["write"][http.StatusNoContent] == 0 || run.outcomes["hostile"] == nil || len(run.windows) != len(fullAt) {
		t.Fatalf("the soak did not do its work: outcomes %v, %d full-disk windows", run.outcomes, len(run.windows))
	}
	if run.outcomes["write"][http.StatusServiceUnavailable] == 0 {
		t.Fatal("no write was refused with 503 while the disk was full")
	}
	// RSS flat: the peaks of the last third of the runs against the first
	// third's (each run starts from a restart, so a leak shows as growth).
	third := cycles / 3
	var first, lastPeak int64
	for i, f := range figures {
		if i < third {
			first = max(first, f.peakRSS)
		}
		if i >= cycles-third {
			lastPeak = max(lastPeak, f.peakRSS)
		}
	}
	t.Logf("peak RSS: first third %d MiB, last third %d MiB", first>>20, lastPeak>>20)
	if lastPeak > 2*first {
		t.Fatalf("peak RSS grew from %d MiB to %d MiB", first>>20, lastPeak>>20)
	}
}
