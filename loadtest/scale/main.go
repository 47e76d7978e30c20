// Command scale is Strata's scale benchmark: it starts a Strata binary on
// 127.0.0.1 with a fresh data dir, loads N active series with
// Kubernetes-like labels (10 labels: __name__, cluster, namespace, pod,
// node, container, job, instance, service, zone) and S samples each over
// remote write 1.0 (2,000 series × S samples a request, Prometheus' batch
// shape), and reports:
//
//   - ingest rate and write latency;
//
//   - RSS per series after the load (RSS growth over the empty server);
//
//   - restart time after kill -9 (the WAL holds every sample);
//
//   - latency of labels, label/pod/values, series and count by
//     (namespace) (up);
//
//   - flush duration, RSS after it, and write latency during it (writers
//     keep pushing the next sample of every series while the flush runs);
//
//   - restart time after a graceful stop (which flushes), until /readyz.
//
//     go build -o /tmp/strata ./cmd/strata
//     go run ./loadtest/scale --bin /tmp/strata --series 1000000
//
// Every wait is bounded; the server is killed when the command ends.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

type config struct {
	bin, dataDir, logFile string
	port                  int
	series, samples       int
	perRequest, writers   int
	queryRuns             int
	timeout               time.Duration
	extraArgs             string
	until                 string
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "the strata binary to run (required)")
	flag.StringVar(&c.dataDir, "data-dir", "", "data dir (default: a new temporary dir, removed at the end)")
	flag.StringVar(&c.logFile, "log", "", "the server's log file (default: <data-dir>/../strata.log)")
	flag.IntVar(&c.port, "port", 18790, "port on 127.0.0.1")
	flag.IntVar(&c.series, "series", 1_000_000, "active series")
	flag.IntVar(&c.samples, "samples", 5, "samples per series (10 s apart)")
	flag.IntVar(&c.perRequest, "series-per-request", 2000, "series per remote-write request")
	flag.IntVar(&c.writers, "writers", 4, "concurrent writers")
	flag.IntVar(&c.queryRuns, "query-runs", 5, "times each query is run")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.StringVar(&c.extraArgs, "args", "", "extra server flags, space separated")
	flag.StringVar(&c.until, "until", "", "stop after this stage: load, restart, queries or flush (default: run every stage)")
	flag.Parse()
	if c.bin == "" {
		fmt.Fprintln(os.Stderr, "scale: --bin is required")
		os.Exit(2)
	}
	if !slices.Contains([]string{"", "load", "restart", "queries", "flush"}, c.until) {
		fmt.Fprintln(os.Stderr, "scale: --until must be load, restart, queries or flush")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// The topology: 10 metrics per pod (series/10 pods), 50 pods per node, 20
// pods per app (container, service), and √pods/2 namespaces (at least 10),
// so that cardinalities grow with the load as in a real cluster: pods and
// nodes linearly, namespaces slower.
var metricNames = []string{
	"up", "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
	"container_network_receive_bytes_total", "container_network_transmit_bytes_total",
	"container_fs_usage_bytes", "kube_pod_status_ready", "kube_pod_container_status_restarts_total",
	"http_requests_total", "process_resident_memory_bytes",
}

type seriesGen struct {
	n          int
	namespaces int
	labels     [][]prompb.Label // per series, sorted by name
}

func newSeries(n int) *seriesGen {
	pods := (n + len(metricNames) - 1) / len(metricNames)
	g := &seriesGen{n: n, namespaces: max(10, int(math.Sqrt(float64(pods)))/2)}
	g.labels = make([][]prompb.Label, n)
	zones := []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}
	for i := range n {
		pod, m := i/len(metricNames), i%len(metricNames)
		ns := fmt.Sprintf("ns-%d", pod%g.namespaces)
		app := fmt.Sprintf("app-%d", pod/20)
		podName := fmt.Sprintf("%s-%08x-%05d", app, uint32(pod*2654435761), pod%100000)
		node := fmt.Sprintf("node-%d", pod/50)
		g.labels[i] = []prompb.Label{
			{Name: "__name__", Value: metricNames[m]},
			{Name: "cluster", Value: "prod-1"},
			{Name: "container", Value: app},
			{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:8080", pod>>16&255, pod>>8&255, pod&255)},
			{Name: "job", Value: "kubernetes-pods"},
			{Name: "namespace", Value: ns},
			{Name: "node", Value: node},
			{Name: "pod", Value: podName},
			{Name: "service", Value: app},
			{Name: "zone", Value: zones[pod%3]},
		}
	}
	return g
}

// request encodes series [from, to) with samples at t0 + k*10s, k in
// [k0, k0+samples).
func (g *seriesGen) request(from, to int, t0 int64, k0, samples int) []byte {
	wr := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, to-from)}
	for i := from; i < to; i++ {
		ss := make([]prompb.Sample, samples)
		for k := range ss {
			ss[k] = prompb.Sample{Timestamp: t0 + int64(k0+k)*10_000, Value: float64((i*7 + (k0+k)*13) % 1000)}
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: g.labels[i], Samples: ss})
	}
	b, err := wr.Marshal()
	if err != nil {
		panic(err) // a WriteRequest of valid strings always marshals
	}
	return snappy.Encode(nil, b)
}

type server struct {
	c       config
	cmd     *exec.Cmd
	url     string
	logFile *os.File
}

func (c config) start(ctx context.Context) (*server, error) {
	args := []string{"--data-dir", c.dataDir, "--listen-addr", fmt.Sprintf("127.0.0.1:%d", c.port),
		"--enable-admin-api", "--log.level", "info",
		"--retention.raw=0", "--retention.5m=0", "--retention.1h=0",
		"--limits.max-series-per-request", "100000", "--limits.max-samples-per-request", "1000000",
		// count by (namespace) (up) selects every pod's up: past the
		// default per-query limits at 1M series and more.
		"--query.max-series", "0", "--query.max-select-bytes", "0"}
	if c.extraArgs != "" {
		args = append(args, strings.Fields(c.extraArgs)...)
	}
	lf, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	return &server{c: c, cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", c.port), logFile: lf}, nil
}

// waitReady polls /readyz every 20 ms and returns when it answers 200.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v", limit)
}

func (s *server) stop(sig syscall.Signal, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd.Process.Signal(sig); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		<-done
		return time.Since(start), fmt.Errorf("did not stop within %v", limit)
	}
	s.logFile.Close()
	return time.Since(start), nil
}

// rss returns the process' resident memory, VmRSS.
func (s *server) rss() int64 { return s.status("VmRSS") }

// rssAnon returns the anonymous part of the RSS: the heap and stacks,
// without the file-backed pages of mmapped segments.
func (s *server) rssAnon() int64 { return s.status("RssAnon") }

// status reads a kB field of /proc/PID/status.
func (s *server) status(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// metric reads one sample from /metrics.
func (s *server) metric(name string) float64 {
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return math.NaN()
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (l *latencies) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d requests)", ms(l.pct(0.5)), ms(l.pct(0.99)), ms(l.pct(1)), len(l.d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// push writes samples k0..k0+samples-1 of every series, writers in
// parallel over disjoint shards, and returns the latencies. stop, when
// closed, ends it early.
func push(s *server, g *seriesGen, c config, t0 int64, k0, samples int, stop <-chan struct{}) (*latencies, int64, error) {
	lat := &latencies{}
	var sent atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	next := atomic.Int64{}
	client := &http.Client{Timeout: 2 * time.Minute}
	for range c.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from := int(next.Add(int64(c.perRequest))) - c.perRequest
				if from >= g.n {
					return
				}
				to := min(g.n, from+c.perRequest)
				body := g.request(from, to, t0, k0, samples)
				for attempt := 0; ; attempt++ {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/write", bytes.NewReader(body))
					req.Header.Set("Content-Encoding", "snappy")
					req.Header.Set("Content-Type", "application/x-protobuf")
					req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
					resp, err := client.Do(req)
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							lat.add(time.Since(start))
							sent.Add(int64((to - from) * samples))
							break
						}
						if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 50 {
							time.Sleep(100 * time.Millisecond)
							continue
						}
						err = fmt.Errorf("write: %d %s", resp.StatusCode, b)
					}
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, sent.Load(), firstErr
}

// query runs path n times and returns the median and the max latency and
// the size of the last answer.
func query(s *server, path string, n int) (med, worst time.Duration, size int, err error) {
	var ds []time.Duration
	for range n {
		start := time.Now()
		resp, err := http.Get(s.url + path)
		if err != nil {
			return 0, 0, 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, 0, 0, fmt.Errorf("GET %s: %d %.200s", path, resp.StatusCode, b)
		}
		ds = append(ds, time.Since(start))
		size = len(b)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1], size, nil
}

func run(c config) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if c.dataDir == "" {
		tmp, err := os.MkdirTemp("", "strata-scale-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		c.dataDir = filepath.Join(tmp, "data")
	}
	if c.logFile == "" {
		c.logFile = filepath.Join(filepath.Dir(c.dataDir), "strata.log")
	}
	out := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	out("# scale: %d series × %d samples, %d series a request, %d writers, GOMAXPROCS of the machine: %d CPUs", c.series, c.samples, c.perRequest, c.writers, runtimeCPUs())

	genStart := time.Now()
	g := newSeries(c.series)
	out("generated labels in %v (%d namespaces)", time.Since(genStart).Round(time.Millisecond), g.namespaces)

	s, err := c.start(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = s.cmd.Process.Kill() }()
	if err := s.waitReady(time.Minute); err != nil {
		return err
	}
	time.Sleep(time.Second)
	rss0, anon0 := s.rss(), s.rssAnon()
	cpu0 := s.metric("process_cpu_seconds_total")

	// 1. Load.
	t0 := (time.Now().Add(-time.Hour).UnixMilli() / 10_000) * 10_000
	start := time.Now()
	lat, sent, err := push(s, g, c, t0, 0, c.samples, nil)
	if err != nil {
		return err
	}
	el := time.Since(start)
	cpu := s.metric("process_cpu_seconds_total") - cpu0
	out("ingest: %d samples in %v = %.0f samples/s; write latency %s; server CPU %.1f s (%.2f µs per sample: what load on the machine does not inflate)",
		sent, el.Round(time.Millisecond), float64(sent)/el.Seconds(), lat, cpu, cpu*1e6/float64(sent))
	time.Sleep(2 * time.Second)
	rss1 := s.rss()
	out("rss: %.0f MiB before, %.0f MiB after load: %.0f B per series (anonymous: %.0f B per series); go heap in use %.0f MiB", mib(rss0), mib(rss1),
		float64(rss1-rss0)/float64(c.series), float64(s.rssAnon()-anon0)/float64(c.series), mib(int64(s.metric("go_memstats_heap_inuse_bytes"))))
	if c.until == "load" {
		return nil
	}

	// 2. kill -9 with every sample in the WAL, then start again.
	if _, err := s.stop(syscall.SIGKILL, time.Minute); err != nil {
		return err
	}
	if s, err = c.start(ctx); err != nil {
		return err
	}
	start = time.Now()
	if err := s.waitReady(10 * time.Minute); err != nil {
		return err
	}
	ready, readyCPU, readyRSS := time.Since(start), s.metric("process_cpu_seconds_total"), s.rss()
	// RSS again 10 s later: what the process keeps once the garbage of
	// the replay is collected (a loaded machine makes that collection
	// slow).
	time.Sleep(10 * time.Second)
	out("restart after kill -9 (WAL: %d series, %d samples): ready in %v, server CPU %.1f s (%.1f s 10 s later); rss %.0f MiB when ready, %.0f MiB 10 s later; head series %.0f",
		c.series, sent, ready.Round(time.Millisecond), readyCPU, s.metric("process_cpu_seconds_total"), mib(readyRSS), mib(s.rss()), s.metric("strata_head_series"))
	if c.until == "restart" {
		return nil
	}

	// 3. Queries.
	for _, q := range []struct{ name, path string }{
		{"labels", "/api/v1/labels"},
		{"label/namespace/values", "/api/v1/label/namespace/values"},
		{"label/pod/values", "/api/v1/label/pod/values"},
		{"label/pod/values?limit=1000", "/api/v1/label/pod/values?limit=1000"},
		{"series up{namespace=ns-1}", "/api/v1/series?" + url.Values{"match[]": {`up{namespace="ns-1"}`}}.Encode()},
		{"series up (limit 10000)", "/api/v1/series?" + url.Values{"match[]": {`up`}, "limit": {"10000"}}.Encode()},
		{"count by (namespace) (up)", "/api/v1/query?" + url.Values{"query": {"count by (namespace) (up)"}, "time": {strconv.FormatInt(t0/1000+int64(c.samples)*10, 10)}}.Encode()},
	} {
		med, worst, size, err := query(s, q.path, c.queryRuns)
		if err != nil {
			return err
		}
		out("query %-30s median %s, max %s, %d bytes", q.name, ms(med), ms(worst), size)
	}
	if c.until == "queries" {
		return nil
	}

	// 4. Flush while writers push the next sample of every series.
	stop := make(chan struct{})
	type pushResult struct {
		lat  *latencies
		sent int64
		err  error
	}
	before := make(chan pushResult, 1)
	go func() {
		l, n, err := push(s, g, c, t0, c.samples, 1, nil)
		before <- pushResult{l, n, err}
	}()
	b := <-before
	if b.err != nil {
		return b.err
	}
	out("writes with no flush (1 sample per series): %s", b.lat)
	during := make(chan pushResult, 1)
	go func() {
		// Round after round of one more sample per series, until the
		// flush ends.
		all := &latencies{}
		var total int64
		for k := c.samples + 1; ; k++ {
			l, n, err := push(s, g, c, t0, k, 1, stop)
			all.d = append(all.d, l.d...)
			total += n
			select {
			case <-stop:
				during <- pushResult{all, total, err}
				return
			default:
			}
			if err != nil {
				during <- pushResult{all, total, err}
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// The highest RSS while the flush runs, sampled every 250 ms: what a
	// flush costs in memory on top of the head.
	rssBefore := s.rss()
	peakDone, peakC := make(chan struct{}), make(chan int64, 1)
	go func() {
		peak := rssBefore
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-peakDone:
				peakC <- max(peak, s.rss())
				return
			case <-t.C:
				peak = max(peak, s.rss())
			}
		}
	}()
	start = time.Now()
	flushCPU0 := s.metric("process_cpu_seconds_total")
	resp, err := http.Post(s.url+"/api/v1/admin/tsdb/flush", "", nil)
	flushCPU := s.metric("process_cpu_seconds_total") - flushCPU0
	close(peakDone)
	peak := <-peakC
	if err != nil {
		return err
	}
	fb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	flushDur := time.Since(start)
	close(stop)
	d := <-during
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("flush: %d %s", resp.StatusCode, fb)
	}
	if d.err != nil {
		return d.err
	}
	out("flush: %v, server CPU %.1f s in that time (with the writes': %d samples); writes during it: %s",
		flushDur.Round(time.Millisecond), flushCPU, d.sent, d.lat)
	out("rss during flush: %.0f MiB when it started, peak %.0f MiB (+%.0f B per series)",
		mib(rssBefore), mib(peak), float64(peak-rssBefore)/float64(c.series))
	time.Sleep(2 * time.Second)
	out("rss after flush: %.0f MiB (%.0f B per series), of it anonymous %.0f MiB (%.0f B per series); go heap in use %.0f MiB",
		mib(s.rss()), float64(s.rss()-rss0)/float64(c.series), mib(s.rssAnon()), float64(s.rssAnon()-anon0)/float64(c.series),
		mib(int64(s.metric("go_memstats_heap_inuse_bytes"))))
	if c.until == "flush" {
		return nil
	}

	// 5. Graceful stop and start.
	stopDur, err := s.stop(syscall.SIGTERM, 10*time.Minute)
	if err != nil {
		return err
	}
	if s, err = c.start(ctx); err != nil {
		return err
	}
	start = time.Now()
	if err := s.waitReady(10 * time.Minute); err != nil {
		return err
	}
	out("graceful stop took %v; restart until ready: %v; head series %.0f", stopDur.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), s.metric("strata_head_series"))
	if _, err := s.stop(syscall.SIGTERM, 10*time.Minute); err != nil {
		return err
	}
	return ctx.Err()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func runtimeCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return -1
	}
	return bytes.Count(b, []byte("processor\t:"))
}
