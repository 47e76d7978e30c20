package runner

import (
	"context"
	"math"
	"sync"
	"time"
)

// pacer spreads work evenly at a rate shared by several goroutines.
type pacer struct {
	rate  float64 // units per second; 0 means no pacing
	start time.Time

	mu       sync.Mutex
	reserved float64 // mu guards reserved: units handed out so far
}

func newPacer(rate float64) *pacer { return &pacer{rate: rate, start: time.Now()} }

// wait blocks until n more units may go, or ctx ends (then it returns
// ctx's error).
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	at := p.start.Add(time.Duration(p.reserved / p.rate * float64(time.Second)))
	p.reserved += float64(n)
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lagGate keeps backfilling writers within maxLag steps of the slowest
// one, so that the data a server receives moves forward in time together,
// as it would from real agents. Prometheus, for one, refuses samples more
// than an hour older than the newest it has.
type lagGate struct {
	maxLag int

	mu      sync.Mutex
	cond    *sync.Cond
	at      []int // mu guards at and stopped: each writer's current step
	stopped bool
}

func newLagGate(writers, maxLag int) *lagGate {
	g := &lagGate{maxLag: maxLag, at: make([]int, writers)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter records that writer w starts step and waits until it is within
// maxLag steps of every unfinished writer. It returns false if the gate
// was stopped.
func (g *lagGate) enter(w, step int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at[w] = step
	g.cond.Broadcast()
	for !g.stopped && step-g.minLocked() > g.maxLag {
		g.cond.Wait()
	}
	return !g.stopped
}

// done records that writer w has nothing more to send.
func (g *lagGate) done(w int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.at[w] = math.MaxInt
	g.cond.Broadcast()
}

// stop releases every waiting writer for good.
func (g *lagGate) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.cond.Broadcast()
}

func (g *lagGate) minLocked() int {
	m := math.MaxInt
	for _, s := range g.at {
		m = min(m, s)
	}
	return m
}
