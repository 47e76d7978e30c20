package runner

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Collections between queries.
//
// The load generator allocates about 16 KB a query (most of it decoding
// the answer, after its latency is taken), and its heap is small, so the
// Go runtime collected about five times a second, at whatever moment the
// heap reached its goal: often while a query was in flight. That query's
// latency then held the generator's own stop-the-world pauses and mark
// assists, and its answer waited for CPUs that the generator's mark
// workers held; the generator counted its own pauses as the server's
// latency. With one query in flight at a time (the warm target's preset)
// a traced run showed 47 collections in 20 s and 68 queries overlapping
// one, 69 % of them slower than 1 ms against 2.4 % of the others.
//
// A query-only run therefore turns the automatic collector off and has
// the workers collect, between two queries, at the points the runtime
// would have: when the heap reaches its goal, GOGC percent more than what
// the last collection left (at least 4 MB, the runtime's minimum). The
// collections and their work are the same; only their moment changes. A
// worker that finds the heap at its goal collects before it sends its
// next query; with several workers the others' queries may be in flight
// meanwhile, as before. A memory limit stays as a backstop.
type gcPacer struct {
	percent int           // the GOGC in force before; the goal's growth
	limit   int64         // the memory limit in force before
	goal    atomic.Uint64 // heap bytes at which the next collection is due
	mu      sync.Mutex    // one collection at a time; guards sample
	sample  []metrics.Sample
	count   atomic.Int64 // collections made
}

const (
	heapObjects = "/memory/classes/heap/objects:bytes"
	minHeapGoal = 4 << 20 // the runtime's minimum heap goal
	// gcBackstop is the memory limit set while the pacer runs, when none
	// was: should the workers not collect (all waiting on slow answers
	// while something else allocates), the runtime still does.
	gcBackstop = 1 << 30
)

// startGCPacer turns the automatic collector off and returns the pacer
// that the workers call between queries; nil (nothing changed) when
// GOGC=off was set already.
func startGCPacer() *gcPacer {
	percent := debug.SetGCPercent(-1)
	if percent < 0 {
		debug.SetGCPercent(percent)
		return nil
	}
	p := &gcPacer{percent: percent, limit: debug.SetMemoryLimit(-1), sample: heapSample()}
	if p.limit == math.MaxInt64 {
		debug.SetMemoryLimit(gcBackstop)
	}
	p.collect()
	return p
}

// stop puts the collector back as it was.
func (p *gcPacer) stop() {
	if p == nil {
		return
	}
	debug.SetMemoryLimit(p.limit)
	debug.SetGCPercent(p.percent)
}

// between collects if the heap has reached its goal; a worker calls it
// with no query of its own in flight, with a sample of its own made by
// heapSample.
func (p *gcPacer) between(s []metrics.Sample) {
	if p == nil || heapBytes(s) < p.goal.Load() {
		return
	}
	if !p.mu.TryLock() {
		return // another worker is collecting
	}
	defer p.mu.Unlock()
	if heapBytes(p.sample) >= p.goal.Load() {
		p.collect()
	}
}

// collect runs a whole collection and sets the next goal from what it
// left; the caller holds mu, or is alone.
func (p *gcPacer) collect() {
	runtime.GC()
	p.count.Add(1)
	live := heapBytes(p.sample)
	p.goal.Store(max(live+live*uint64(p.percent)/100, minHeapGoal))
}

// heapSample returns the sample heapBytes reads into.
func heapSample() []metrics.Sample { return []metrics.Sample{{Name: heapObjects}} }

// heapBytes returns the bytes of heap objects, live or not yet swept.
func heapBytes(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}
