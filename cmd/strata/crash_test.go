package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	id    int
	next  int64   // next sequence number to send
	acked []int64 // acknowledged sequence numbers
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
		var ss []e2eSample
		for seq := first; seq < w.next; seq++ {
			ss = append(ss, e2eSample{host: strconv.Itoa(w.id), metric: "seq", t: crashBase.Add(time.Duration(seq) * time.Second), v: float64(seq)})
		}
		req, err = http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(remoteWriteBody(nil, "crash", ss)))
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
		}
	}
	return true
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

// TestCrashRecovery runs the real binary, pushes numbered samples from
// several writers, kills the process with SIGKILL at random moments and
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
		if len(w.acked) == 0 {
			t.Fatalf("writer %d had no request acknowledged in %d cycles", w.id, cycles)
		}
	}
}
