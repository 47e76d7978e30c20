package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/util/jsonutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// strataBinary builds cmd/strata once per test run.
func strataBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "strata")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is the strata binary running as a child.
type process struct {
	cmd *exec.Cmd
	url string
}

var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)/`)

func startProcess(t *testing.T, bin, dataDir string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log.level", "warn",
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	p := &process{cmd: cmd}
	// Never leave a server behind, whatever way the test ends.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	select {
	case u := <-urlc:
		p.url = u
		return p
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("strata did not start within 60s; stderr:\n%s", stderr.String())
	}
	return nil
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return // already reaped
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// crashWriter pushes numbered samples of one series and remembers which
// requests were acknowledged.
type crashWriter struct {
	id        int
	next      int64   // next sequence number to send
	acked     []int64 // acknowledged sequence numbers
	ackedHist []int64 // of them, those sent with a histogram (by remote write)
}

const crashBatch = 25

var crashBase = time.Unix(1_700_000_000, 0).UTC()

// push sends one request with the writer's next batch; it reports whether
// the server answered at all.
func (w *crashWriter) push(client *http.Client, base string, viaRemoteWrite bool) bool {
	first := w.next
	w.next += crashBatch
	var (
		req *http.Request
		err error
	)
	if viaRemoteWrite {
		// The floats and, in the same request, a native histogram per
		// sequence number in a series of its own.
		wr := &prompb.WriteRequest{}
		for seq := first; seq < w.next; seq++ {
			ts := crashBase.Add(time.Duration(seq) * time.Second).UnixMilli()
			wr.Timeseries = append(wr.Timeseries,
				prompb.TimeSeries{Labels: crashLabels("e2e_seq", w.id), Samples: []prompb.Sample{{Timestamp: ts, Value: float64(seq)}}},
				prompb.TimeSeries{Labels: crashLabels("e2e_hseq", w.id), Histograms: []prompb.Histogram{crashHistogram(seq, ts)}})
		}
		raw, merr := wr.Marshal()
		if merr != nil {
			panic(merr)
		}
		req, err = http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	} else {
		var b bytes.Buffer
		for seq := first; seq < w.next; seq++ {
			fmt.Fprintf(&b, "e2e,fmt=crash,host=%d seq=%d %d\n", w.id, seq, crashBase.Add(time.Duration(seq)*time.Second).UnixMilli())
		}
		req, err = http.NewRequest(http.MethodPost, base+"/write?precision=ms", &b)
	}
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		for seq := first; seq < w.next; seq++ {
			w.acked = append(w.acked, seq)
			if viaRemoteWrite {
				w.ackedHist = append(w.ackedHist, seq)
			}
		}
	}
	return true
}

func crashLabels(name string, id int) []prompb.Label {
	return []prompb.Label{{Name: "__name__", Value: name}, {Name: "fmt", Value: "crash"}, {Name: "host", Value: strconv.Itoa(id)}}
}

// crashHistogram is the histogram sent for seq: integer counts and float
// counts by turns of ten (so chunks change kind), counts that
// grow with seq, a schema and bucket offsets that change now and then (so
// chunks are cut), and a sum that uses every bit.
func crashHistogram(seq, ts int64) prompb.Histogram {
	n := uint64(seq)
	h := &histogram.Histogram{
		Schema: int32(seq/100%5) - 1, ZeroThreshold: 0.001, ZeroCount: n / 3, Sum: float64(seq) / 3,
		PositiveSpans:   []histogram.Span{{Offset: int32(seq / 40 % 3), Length: 2}, {Offset: 1, Length: 1}},
		PositiveBuckets: []int64{int64(n), 1, -1},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		NegativeBuckets: []int64{int64(n / 7)},
	}
	h.Count = h.ZeroCount + n + (n + 1) + n + n/7
	if seq/10%2 == 1 {
		return prompb.FromFloatHistogram(ts, h.ToFloat(nil))
	}
	return prompb.FromIntHistogram(ts, h)
}

// crashHistogramJSON is the API's JSON of the histogram sent for seq, as
// Prometheus' own encoder writes it.
func crashHistogramJSON(seq int64) string {
	h := crashHistogram(seq, 0)
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	jsonutil.MarshalHistogram(h.ToFloatHistogram(), stream)
	return string(stream.Buffer())
}

// verify checks that every acknowledged sample of every writer is readable,
// with its value, and that no timestamp appears twice.
func verify(t *testing.T, base string, writers []*crashWriter) {
	t.Helper()
	var maxSeq int64
	for _, w := range writers {
		maxSeq = max(maxSeq, w.next)
	}
	at := crashBase.Add(time.Duration(maxSeq) * time.Second)
	q := fmt.Sprintf(`e2e_seq{fmt="crash"}[%ds]`, maxSeq+10)
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {fmt.Sprint(at.Unix())}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []matrixSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("verify query: status %d, %v", resp.StatusCode, err)
	}
	got := map[string][]point{}
	for _, s := range body.Data.Result {
		got[s.Metric["host"]] = s.points(t)
	}
	verifyHistograms(t, base, writers, at, maxSeq)
	for _, w := range writers {
		pts := got[strconv.Itoa(w.id)]
		present := map[int64]bool{}
		for i, p := range pts {
			seq := (p.T - crashBase.UnixMilli()) / 1000
			if i > 0 && p.T <= pts[i-1].T {
				t.Fatalf("writer %d: timestamps not strictly increasing at %d (duplicate or disorder)", w.id, p.T)
			}
			if p.V != float64(seq) {
				t.Fatalf("writer %d: sample %d has value %v", w.id, seq, p.V)
			}
			if seq >= w.next {
				t.Fatalf("writer %d: sample %d was never sent", w.id, seq)
			}
			present[seq] = true
		}
		for _, seq := range w.acked {
			if !present[seq] {
				t.Fatalf("writer %d: acknowledged sample %d is lost (%d acknowledged, %d present)", w.id, seq, len(w.acked), len(pts))
			}
		}
	}
}

// verifyHistograms checks that every acknowledged histogram is readable
// exactly once and bit for bit: its JSON, which writes every count and the
// sum with all their digits, equals what Prometheus writes for the
// histogram that was sent.
func verifyHistograms(t *testing.T, base string, writers []*crashWriter, at time.Time, maxSeq int64) {
	t.Helper()
	q := fmt.Sprintf(`e2e_hseq{fmt="crash"}[%ds]`, maxSeq+10)
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {fmt.Sprint(at.Unix())}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Metric     map[string]string    `json:"metric"`
				Values     []any                `json:"values"`
				Histograms [][2]json.RawMessage `json:"histograms"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("verify histograms: status %d, %v", resp.StatusCode, err)
	}
	got := map[string]map[int64]string{}
	for _, s := range body.Data.Result {
		if len(s.Values) != 0 {
			t.Fatalf("series %v holds %d floats", s.Metric, len(s.Values))
		}
		m := map[int64]string{}
		for _, h := range s.Histograms {
			var ts float64
			if err := json.Unmarshal(h[0], &ts); err != nil {
				t.Fatal(err)
			}
			seq := (int64(math.Round(ts*1000)) - crashBase.UnixMilli()) / 1000
			if _, dup := m[seq]; dup {
				t.Fatalf("series %v: histogram %d twice", s.Metric, seq)
			}
			m[seq] = string(h[1])
		}
		got[s.Metric["host"]] = m
	}
	for _, w := range writers {
		m := got[strconv.Itoa(w.id)]
		for seq, js := range m {
			if seq >= w.next {
				t.Fatalf("writer %d: histogram %d was never sent", w.id, seq)
			}
			if want := crashHistogramJSON(seq); js != want {
				t.Fatalf("writer %d: histogram %d reads back as\n%s\nwant\n%s", w.id, seq, js, want)
			}
		}
		for _, seq := range w.ackedHist {
			if _, ok := m[seq]; !ok {
				t.Fatalf("writer %d: acknowledged histogram %d is lost (%d acknowledged, %d present)", w.id, seq, len(w.ackedHist), len(m))
			}
		}
	}
}

// TestCrashRecovery runs the real binary, pushes numbered samples (and,
// through remote write, a native histogram with each) from several writers, kills the process with SIGKILL at random moments and
// restarts it on the same data dir: every acknowledged sample must be
// readable, exactly once. Flushes and compactions run all the time (1 min
// blocks, each request spans 25 s), so kills land in them too.
// STRATA_CRASH_CYCLES sets the number of cycles (default 20).
func TestCrashRecovery(t *testing.T) {
	cycles := 20
	if v := os.Getenv("STRATA_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("STRATA_CRASH_CYCLES: %v", err)
		}
		cycles = n
	}
	bin := strataBinary(t)
	dir := t.TempDir()
	args := []string{"--storage.block-duration", "1m", "--storage.compaction-ranges", "1m,10m", "--storage.maintenance-interval", "20ms"}
	rng := rand.New(rand.NewSource(42))
	writers := make([]*crashWriter, 4)
	for i := range writers {
		writers[i] = &crashWriter{id: i}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range cycles {
		p := startProcess(t, bin, dir, args...)
		verify(t, p.url, writers)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil && n < 10_000; n++ {
					if !w.push(client, p.url, (i+n)%2 == 0) {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.Intn(400)) * time.Millisecond)
		p.kill(t)
		cancel()
		wg.Wait()
		total := 0
		for _, w := range writers {
			total += len(w.acked)
		}
		t.Logf("cycle %d: killed; %d samples acknowledged so far", c, total)
	}
	p := startProcess(t, bin, dir, args...)
	defer p.kill(t)
	verify(t, p.url, writers)
	for _, w := range writers {
		if len(w.acked) == 0 || len(w.ackedHist) == 0 {
			t.Fatalf("writer %d had no request acknowledged in %d cycles (%d with histograms)", w.id, cycles, len(w.ackedHist))
		}
	}
}
