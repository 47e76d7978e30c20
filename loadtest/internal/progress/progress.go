// Package progress shows a running load test: on a terminal, a bar redrawn
// in place with rates and the time left; elsewhere (a log file, CI), a
// plain line every few seconds.
//
// It polls a State function the caller provides and only renders; it must
// not know what is being counted.
package progress

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode selects how progress is shown.
type Mode string

const (
	// Auto draws a bar on a terminal and lines elsewhere.
	Auto Mode = "auto"
	// Bar redraws one line in place.
	Bar Mode = "bar"
	// Lines prints a line every interval.
	Lines Mode = "lines"
	// Off shows nothing.
	Off Mode = "off"
)

// ParseMode checks s.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, Bar, Lines, Off:
		return m, nil
	}
	return "", fmt.Errorf("unknown progress mode %q: want auto, bar, lines or off", s)
}

// Counter is a cumulative count shown with its rate.
type Counter struct {
	Name  string
	Value int64
}

// Latency is the latency of one kind of request over the interval since
// the previous poll, formatted by the caller.
type Latency struct {
	Name     string
	Count    int64
	P50, P99 string
}

// State is what the run reports at one moment.
type State struct {
	// Fraction is how much of the run is done, 0 to 1; negative when
	// unknown (no ETA then).
	Fraction float64
	Counters []Counter
	Errors   int64
	// Latencies are shown on progress lines (not on the bar) when their
	// Count is not zero.
	Latencies []Latency
}

// Options configures a display.
type Options struct {
	Out  io.Writer
	Mode Mode
	// TTY says whether Out is a terminal, for Auto.
	TTY bool
	// Width is the terminal width for the bar; zero means 100.
	Width int
	// Interval is the time between lines in Lines mode; zero means 5 s.
	// The bar is redrawn every 250 ms.
	Interval time.Duration
}

// Progress is a running display.
type Progress struct {
	o     Options
	poll  func() State
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	last     time.Time // last redraw, for rates; owned by the run goroutine
	lastVals []int64
}

// Start shows the progress of poll until Stop.
func Start(o Options, poll func() State) *Progress {
	if o.Mode == Auto {
		o.Mode = Lines
		if o.TTY {
			o.Mode = Bar
		}
	}
	if o.Width <= 0 {
		o.Width = 100
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	p := &Progress{o: o, poll: poll, start: time.Now(), stop: make(chan struct{})}
	p.last = p.start
	if o.Mode == Off {
		return p
	}
	p.wg.Add(1)
	go p.run()
	return p
}

// Stop draws the final state and ends the display.
func (p *Progress) Stop() {
	if p.o.Mode == Off {
		return
	}
	close(p.stop)
	p.wg.Wait()
}

func (p *Progress) run() {
	defer p.wg.Done()
	every := p.o.Interval
	if p.o.Mode == Bar {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			p.draw(time.Now(), true)
			return
		case now := <-tick.C:
			p.draw(now, false)
		}
	}
}

func (p *Progress) draw(now time.Time, final bool) {
	st := p.poll()
	if p.o.Mode == Bar {
		line := p.barLine(st, now, final)
		fmt.Fprintf(p.o.Out, "\r%s\x1b[K", line)
		if final {
			fmt.Fprintln(p.o.Out)
		}
		return
	}
	fmt.Fprintln(p.o.Out, p.textLine(st, now, final))
}

// rates returns each counter's rate since the last draw (the whole run for
// the final one) and remembers the values.
func (p *Progress) rates(st State, now time.Time, final bool) []float64 {
	since, prev := p.last, p.lastVals
	if final || len(prev) != len(st.Counters) {
		since, prev = p.start, make([]int64, len(st.Counters))
	}
	dt := now.Sub(since).Seconds()
	r := make([]float64, len(st.Counters))
	for i, c := range st.Counters {
		if dt > 0 {
			r[i] = float64(c.Value-prev[i]) / dt
		}
	}
	// The bar's rate over 250 ms is jumpy: keep a window of about 2 s.
	if p.o.Mode != Bar || now.Sub(p.last) >= 2*time.Second || len(p.lastVals) != len(st.Counters) {
		p.last = now
		p.lastVals = p.lastVals[:0]
		for _, c := range st.Counters {
			p.lastVals = append(p.lastVals, c.Value)
		}
	}
	return r
}

func (p *Progress) textLine(st State, now time.Time, final bool) string {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	fmt.Fprintf(&b, "[%7.1fs]", elapsed.Seconds())
	if st.Fraction >= 0 {
		fmt.Fprintf(&b, " %5.1f%%", 100*min(1, st.Fraction))
	}
	rates := p.rates(st, now, final)
	for i, c := range st.Counters {
		fmt.Fprintf(&b, "  %s %s (%s/s)", c.Name, Compact(float64(c.Value)), Compact(rates[i]))
	}
	fmt.Fprintf(&b, "  errors %d", st.Errors)
	for _, l := range st.Latencies {
		if l.Count > 0 && !final { // the final line's rates are the run's; its latencies would be a remnant
			fmt.Fprintf(&b, "  %s p50 %s p99 %s", l.Name, l.P50, l.P99)
		}
	}
	if eta, ok := eta(st.Fraction, elapsed); ok && !final {
		fmt.Fprintf(&b, "  ETA %s", eta)
	}
	if final {
		b.WriteString("  done")
	}
	return b.String()
}

func (p *Progress) barLine(st State, now time.Time, final bool) string {
	elapsed := now.Sub(p.start)
	var tail strings.Builder
	if st.Fraction >= 0 {
		fmt.Fprintf(&tail, " %3.0f%%", 100*min(1, st.Fraction))
	}
	rates := p.rates(st, now, final)
	for i, c := range st.Counters {
		fmt.Fprintf(&tail, " %s %s %s/s", c.Name, Compact(float64(c.Value)), Compact(rates[i]))
	}
	if st.Errors > 0 {
		fmt.Fprintf(&tail, " err %d", st.Errors)
	}
	if eta, ok := eta(st.Fraction, elapsed); ok && !final {
		fmt.Fprintf(&tail, " ETA %s", eta)
	} else {
		fmt.Fprintf(&tail, " %s", clock(elapsed))
	}
	width := p.o.Width - len(tail.String()) - 3
	if width < 10 {
		return strings.TrimSpace(tail.String())
	}
	frac := st.Fraction
	if frac < 0 { // unknown: a bouncing marker
		pos := int(elapsed/(100*time.Millisecond)) % (2 * width)
		if pos >= width {
			pos = 2*width - pos - 1
		}
		return "[" + strings.Repeat(" ", pos) + "#" + strings.Repeat(" ", width-pos-1) + "]" + tail.String()
	}
	full := int(min(1, frac) * float64(width))
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return "[" + bar + "]" + tail.String()
}

// eta estimates the time left from the fraction done so far.
func eta(frac float64, elapsed time.Duration) (string, bool) {
	if frac <= 0 || frac >= 1 || elapsed < time.Second {
		return "", false
	}
	left := time.Duration(float64(elapsed) * (1 - frac) / frac)
	return clock(left), true
}

// clock formats d as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// Compact formats v with an SI suffix: 950, 12.3k, 4.56M.
func Compact(v float64) string {
	switch a := max(v, -v); {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a >= 100 || v == float64(int64(v)):
		return strconv.FormatInt(int64(v+0.5), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
