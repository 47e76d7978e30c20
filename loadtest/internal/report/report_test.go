package report

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	// 100,000 latencies from a long-tailed distribution, split over four
	// histograms and merged, against the exact order statistics.
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	hs := []*Histogram{NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram()}
	for i := range 100_000 {
		d := time.Duration(math.Exp(r.NormFloat64()*1.5+math.Log(2e6))) + time.Microsecond // median ~2ms
		all = append(all, d)
		hs[i%4].Record(d)
	}
	h := NewHistogram()
	for _, x := range hs {
		h.Merge(x)
	}
	slices.Sort(all)
	exact := func(q float64) time.Duration { return all[int(math.Ceil(q*float64(len(all))))-1] }
	s := h.Summary()
	if s.Count != 100_000 {
		t.Fatalf("count %d", s.Count)
	}
	f := func(name string, got float64, want time.Duration) {
		t.Helper()
		w := float64(want) / 1e6
		if math.Abs(got-w) > max(0.002*w, 0.001) { // 3 significant digits; whole µs
			t.Errorf("%s: got %.4fms, want %.4fms", name, got, w)
		}
	}
	f("p50", s.P50Ms, exact(0.50))
	f("p90", s.P90Ms, exact(0.90))
	f("p99", s.P99Ms, exact(0.99))
	f("p99.9", s.P999Ms, exact(0.999))
	f("max", s.MaxMs, all[len(all)-1])
	f("min", s.MinMs, all[0])
	if got := h.Quantile(0.5); math.Abs(float64(got-exact(0.5)))/float64(exact(0.5)) > 0.002 {
		t.Errorf("Quantile(0.5) = %s", got)
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if (h.Summary() != Latency{}) {
		t.Fatal("empty histogram has a summary")
	}
	h.Record(0)             // clamped up to 1µs
	h.Record(3 * time.Hour) // clamped down to 1h
	h.Record(-time.Second)  // clamped up
	if s := h.Summary(); s.Count != 3 || s.MinMs != 0.001 || s.MaxMs < 3.59e6 || s.MaxMs > 3.61e6 {
		t.Fatalf("summary %+v", s)
	}
}

func TestErrorLog(t *testing.T) {
	var l ErrorLog
	for range 3 {
		l.Add("400", "out of bounds")
	}
	l.Add("transport", "connection refused")
	for i := range 10 {
		l.Add("500", strings.Repeat("x", i+1))
	}
	c, msgs := l.Result()
	if c["400"] != 3 || c["transport"] != 1 || c["500"] != 10 || l.Total() != 14 {
		t.Fatalf("counts %v", c)
	}
	if len(msgs) != maxMessages || msgs[0] != "400: out of bounds" {
		t.Fatalf("messages %q", msgs)
	}
}

func TestDerive(t *testing.T) {
	s := &Server{
		Before: &Snapshot{RSSBytes: Int64(100 << 20), HeadSeries: Int64(0)},
		After:  &Snapshot{RSSBytes: Int64(300 << 20), HeadSeries: Int64(200_000), BlockBytes: Int64(900), BlockSamples: Int64(1000)},
	}
	s.Derive("segments after flush")
	if *s.RSSGrowthBytes != 200<<20 || *s.SeriesGrowth != 200_000 || math.Abs(*s.RSSPerSeriesBytes-1048.576) > 1e-9 {
		t.Fatalf("growth %d %d %v", *s.RSSGrowthBytes, *s.SeriesGrowth, *s.RSSPerSeriesBytes)
	}
	if *s.BytesPerSample != 0.9 || s.BytesPerSampleBasis != "segments after flush" {
		t.Fatalf("bytes per sample %v %q", *s.BytesPerSample, s.BytesPerSampleBasis)
	}
	// Unknown figures stay unknown.
	s = &Server{Before: &Snapshot{}, After: &Snapshot{RSSBytes: Int64(1)}}
	s.Derive("x")
	if s.RSSGrowthBytes != nil || s.BytesPerSample != nil || s.RSSPerSeriesBytes != nil {
		t.Fatal("derived figures from nothing")
	}
}

func testReport() *Report {
	h := NewHistogram()
	for i := range 100 {
		h.Record(time.Duration(i+1) * time.Millisecond)
	}
	r := &Report{
		Command: "mixed", Target: Target{URL: "http://127.0.0.1:8430", Flavour: "strata"}, ElapsedSeconds: 10,
		Ingest: &Ingest{Protocol: "rw", Writers: 4, BatchSamples: 10000, Series: 2000, Requests: 10, RequestsOK: 9,
			SamplesSent: 100_000, SamplesAcked: 90_000, SamplesPerSecond: 9000, Errors: Errors{"400": 1},
			ErrorMessages: []string{"400: out of order sample"}, Latency: h.Summary(),
			ServerCPUSeconds: Float64(0.18), LoadCPUSeconds: Float64(0.045)},
		Query: &Query{Mix: "dashboard", Concurrency: 2, Requests: 100, RequestsOK: 100, Latency: h.Summary(),
			Cache: map[string]int64{"hit": 75, "miss": 25}, CacheHitRatio: Float64(0.75),
			ByTemplate: []Breakdown{{Name: "cpu-host", Count: 100, Latency: h.Summary()}}},
		Server: &Server{Before: &Snapshot{RSSBytes: Int64(10 << 20)}, After: &Snapshot{RSSBytes: Int64(30 << 20), HeadSeries: Int64(2000)}},
	}
	r.Server.Derive("")
	return r
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"mixed against http://127.0.0.1:8430 (strata)",
		"100,000 sent, 90,000 acknowledged, 9,000 samples/s",
		"1 × 400",
		"400: out of order sample",
		"p50 50.0ms  p90 90.0ms  p99 99.0ms  max 100ms",
		"hit 75, miss 25, hit ratio 75.0%",
		"cpu-host",
		"RSS                        10.0 MiB       30.0 MiB",
		"server 0.2s (2.000 µs/sample), load generator 0.0s (0.500 µs/sample)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// A query run alone has its own CPU figures, per query.
	r := testReport()
	r.Ingest, r.Query.ServerCPUSeconds, r.Query.LoadCPUSeconds = nil, Float64(0.3), Float64(0.1)
	b.Reset()
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "server 0.3s (3.000 ms/query), load generator 0.1s (1.000 ms/query)"; !strings.Contains(b.String(), want) {
		t.Errorf("text report lacks %q:\n%s", want, b.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := testReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Ingest.SamplesAcked != 90_000 || math.Abs(back.Query.Latency.P99Ms-99) > 0.1 || *back.Query.CacheHitRatio != 0.75 || back.Ingest.Errors["400"] != 1 {
		t.Fatalf("round trip lost data: %s", b.String())
	}
	if strings.Contains(b.String(), "blockBytes") {
		t.Fatal("unknown figures should be left out of the JSON")
	}
}

func TestFormatters(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := count(in); got != want {
			t.Errorf("count(%d) = %q", in, got)
		}
	}
	for in, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 3 << 30: "3.0 GiB", -2048: "-2.0 KiB"} {
		if got := byteSize(in); got != want {
			t.Errorf("byteSize(%d) = %q", in, got)
		}
	}
	for in, want := range map[float64]string{0.25: "250µs", 1.234: "1.23ms", 45.67: "45.7ms", 1234: "1234ms", 12345: "12.3s"} {
		if got := ms(in); got != want {
			t.Errorf("ms(%v) = %q", in, got)
		}
	}
}

// TestWindowTake: Take returns what arrived since the previous Take.
func TestWindowTake(t *testing.T) {
	var w Window
	if l := w.Take(); l.Count != 0 {
		t.Fatalf("empty window: %+v", l)
	}
	for i := 1; i <= 100; i++ {
		w.Record(time.Duration(i) * time.Millisecond)
	}
	first := w.Take()
	if first.Count != 100 || first.P50Ms < 49.9 || first.P50Ms > 50.1 || first.MaxMs < 99.9 {
		t.Fatalf("first window: %+v", first)
	}
	w.Record(7 * time.Millisecond)
	second := w.Take()
	if second.Count != 1 || second.P99Ms < 6.99 || second.P99Ms > 7.01 {
		t.Fatalf("second window: %+v", second)
	}
	if l := w.Take(); l.Count != 0 {
		t.Fatalf("window after Take: %+v", l)
	}
}
