package progress

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLines(t *testing.T) {
	var out syncBuffer
	var n atomic.Int64
	p := Start(Options{Out: &out, Mode: Auto, TTY: false, Interval: 20 * time.Millisecond}, func() State {
		v := n.Add(1000)
		return State{Fraction: 0.5, Counters: []Counter{{"samples", v}}, Errors: 2}
	})
	time.Sleep(70 * time.Millisecond)
	p.Stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want periodic lines, got %q", out.String())
	}
	for _, l := range lines {
		if strings.Contains(l, "\r") || !strings.Contains(l, "50.0%") || !strings.Contains(l, "samples ") || !strings.Contains(l, "errors 2") {
			t.Fatalf("line %q", l)
		}
	}
	if !strings.HasSuffix(lines[len(lines)-1], "done") {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
}

func TestBar(t *testing.T) {
	var out syncBuffer
	p := Start(Options{Out: &out, Mode: Auto, TTY: true, Width: 80}, func() State {
		return State{Fraction: 0.25, Counters: []Counter{{"queries", 10}}}
	})
	p.Stop()
	s := out.String()
	if !strings.HasPrefix(s, "\r[") || !strings.HasSuffix(s, "\x1b[K\n") || !strings.Contains(s, "25%") || !strings.Contains(s, "queries 10") {
		t.Fatalf("bar %q", s)
	}
	line := strings.TrimSuffix(strings.TrimPrefix(s, "\r"), "\x1b[K\n")
	if len(line) > 80 {
		t.Fatalf("bar wider than the terminal: %d", len(line))
	}
	if got := strings.Count(line, "="); got != (80-len(line[strings.Index(line, "]")+1:])-3)/4 {
		t.Fatalf("bar fill %d in %q", got, line)
	}
}

func TestBarUnknownFraction(t *testing.T) {
	p := &Progress{o: Options{Mode: Bar, Width: 60}, start: time.Now()}
	line := p.barLine(State{Fraction: -1}, p.start.Add(3*time.Second), false)
	if strings.Count(line, "#") != 1 || strings.Contains(line, "ETA") || strings.Contains(line, "%") {
		t.Fatalf("line %q", line)
	}
}

func TestOff(t *testing.T) {
	var out syncBuffer
	Start(Options{Out: &out, Mode: Off}, func() State { t.Fatal("polled"); return State{} }).Stop()
	if out.String() != "" {
		t.Fatal("wrote output")
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12.5: "12.5", 950: "950", 12_345: "12.3k", 4_560_000: "4.56M", 2.5e9: "2.50G"} {
		if got := Compact(v); got != want {
			t.Errorf("Compact(%v) = %q, want %q", v, got, want)
		}
	}
	if got, ok := eta(0.25, 30*time.Second); !ok || got != "1:30" {
		t.Errorf("eta = %q", got)
	}
	if _, ok := eta(-1, time.Minute); ok {
		t.Error("eta without a fraction")
	}
	if got := clock(3723 * time.Second); got != "1:02:03" {
		t.Errorf("clock = %q", got)
	}
	if _, err := ParseMode("fancy"); err == nil {
		t.Error("bad mode accepted")
	}
}

// TestLinesShowIntervalLatency: a line shows each latency with a count, not
// one without, and the final line shows none.
func TestLinesShowIntervalLatency(t *testing.T) {
	p := &Progress{o: Options{Mode: Lines}, start: time.Now()}
	st := State{Fraction: -1, Latencies: []Latency{
		{Name: "write", Count: 10, P50: "19.5ms", P99: "139ms"},
		{Name: "query", Count: 0, P50: "5.00ms", P99: "6.00ms"},
	}}
	line := p.textLine(st, p.start.Add(time.Second), false)
	if !strings.Contains(line, "write p50 19.5ms p99 139ms") || strings.Contains(line, "query p50") {
		t.Fatalf("line %q", line)
	}
	if final := p.textLine(st, p.start.Add(time.Second), true); strings.Contains(final, "p50") {
		t.Fatalf("final line %q", final)
	}
}
