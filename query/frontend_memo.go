package query

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Range queries' analyses. Before a range query reaches the cache the
// frontend parses it three times (ChooseResolution, newPlan and its window
// check), preprocesses it twice, runs promql.FindMinMaxTime for its last
// step and for each extent, and formats each extent's tags: for a query
// answered from a stored answer that was most of the server's work. All of
// it is a function of the query's text, start, end and step and of the
// engine's and frontend's settings alone, so it is made once into a
// rangeAnalysis, kept in a small table under exactly those four, and used
// again by later requests of the same query.
//
// What depends on the data stored now or on the clock is never kept: the
// resolution read (rollups written, raw retention, series holding
// histograms), which steps read only data older than the freshness window,
// and whether an extent's data stays inside retention are decided on every
// request from the analysis, by the same code whether the analysis was
// just made or found in the table. So the keys, tags and pieces of a
// request do not depend on whether its analysis was found.

// The table holds memoSets sets of memoWays analyses; a key's hash picks
// its set, and an analysis replaces, in its set, an empty slot, the one of
// the same key, or else the slots in turn. A dashboard's panels over one
// window take one slot each; with four ways, a few queries whose keys
// happen to share a set do not keep replacing each other.
const (
	memoSets = 64
	memoWays = 4
)

// rangeMemo holds analyses; it is safe for concurrent use.
type rangeMemo struct {
	sets [memoSets]struct {
		ways [memoWays]atomic.Pointer[rangeAnalysis]
		next atomic.Uint32 // the way to replace next
	}
}

// memoKey is what an analysis is kept under: the query's text and its
// exact window (the analysis is made from these values, not rounded ones).
type memoKey struct {
	qs                     string
	startSec, endSec, step int64 // step in ns
	startNsec, endNsec     int32
}

func memoKeyOf(r RangeQuery) memoKey {
	return memoKey{qs: r.Query, startSec: r.Start.Unix(), startNsec: int32(r.Start.Nanosecond()),
		endSec: r.End.Unix(), endNsec: int32(r.End.Nanosecond()), step: int64(r.Step)}
}

func (k *memoKey) set() uint64 {
	h := xxhash.Sum64String(k.qs)
	for _, v := range [5]int64{k.startSec, int64(k.startNsec), k.endSec, int64(k.endNsec), k.step} {
		h = (h ^ uint64(v)) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	return h % memoSets
}

// get returns the analysis kept under k, or nil.
func (m *rangeMemo) get(k memoKey) *rangeAnalysis {
	set := &m.sets[k.set()]
	for i := range set.ways {
		if a := set.ways[i].Load(); a != nil && a.key == k {
			return a
		}
	}
	return nil
}

// put keeps a.
func (m *rangeMemo) put(a *rangeAnalysis) {
	set := &m.sets[a.key.set()]
	for i := range set.ways {
		if old := set.ways[i].Load(); old == nil || old.key == a.key {
			set.ways[i].Store(a)
			return
		}
	}
	set.ways[set.next.Add(1)%memoWays].Store(a)
}

// rangeAnalysis is what the frontend derives from a range query's text and
// window alone (see above). It is never modified once made, except for
// full, which is made the first time it is needed; it is safe for
// concurrent use.
type rangeAnalysis struct {
	key              memoKey
	start, end, step int64 // ms
	stepDur          time.Duration
	rq               *resolutionQuery
	// pl is nil when the query is not split nor cached: its answer
	// depends on its window. Its res is unset: each request sets its own
	// in a copy.
	pl *plan
	// lastStep is the last step of the grid (≤ end); lastMaxT the newest
	// data it reads, when lastReads.
	lastStep  int64
	lastMaxT  int64
	lastReads bool

	fullOnce sync.Once
	full     []extentData // the extents when every step is settled
}

// extentData is what the query's text and window say about one extent:
// the steps it answers, its data's range and its tags.
type extentData struct {
	ws, a, b int64 // extent start; first and last step answered (ms)
	reads    bool  // whether its steps read any data
	mint     int64 // the oldest data they read, when reads
	maxt     int64 // the newest data the extent could ever read, when reads
	// tagged is false when its data spans too many days to be tagged
	// (never cached); tags are its tags otherwise.
	tagged bool
	tags   []string
}

// analyzeRange makes r's analysis; the error is a parse error, or ctx's.
func (f *Frontend) analyzeRange(ctx context.Context, r RangeQuery) (*rangeAnalysis, error) {
	rq, err := f.engine.resolutionQuery(r.Query, r.Start, r.End, r.Step)
	if err != nil {
		return nil, err
	}
	start, end, step := r.Start.UnixMilli(), r.End.UnixMilli(), r.Step.Milliseconds()
	a := &rangeAnalysis{key: memoKeyOf(r), start: start, end: end, step: step, stepDur: r.Step, rq: rq}
	pl, ok, err := f.newPlan(r.Query, r.Start, r.End, r.Step)
	if err != nil {
		return nil, err
	}
	if !ok {
		return a, nil
	}
	a.pl = pl
	a.lastStep = start + (end-start)/step*step
	// As plan.lastSettledStep judges a step.
	_, a.lastMaxT, a.lastReads = pl.dataRange(a.lastStep, a.lastStep, time.Duration(step)*time.Millisecond)
	return a, ctx.Err()
}

// rangeAnalysis returns r's analysis, from the table when it is there.
func (f *Frontend) rangeAnalysis(ctx context.Context, r RangeQuery) (*rangeAnalysis, error) {
	if a := f.memo.get(memoKeyOf(r)); a != nil {
		return a, nil
	}
	a, err := f.analyzeRange(ctx, r)
	if err != nil {
		return nil, err
	}
	f.memo.put(a)
	return a, nil
}

// settledUpTo returns the last step whose data is all at or before cutoff
// (start-step if none): plan.lastSettledStep, answered from the analysis
// when every step is settled.
func (a *rangeAnalysis) settledUpTo(cutoff int64) int64 {
	if !a.lastReads || a.lastMaxT <= cutoff {
		return a.lastStep
	}
	return a.pl.lastSettledStep(a.start, a.end, a.step, cutoff)
}

// extents returns the extents of the steps up to ce, a step of the grid.
func (f *Frontend) extents(ctx context.Context, a *rangeAnalysis, ce int64) ([]extentData, error) {
	if ce == a.lastStep {
		a.fullOnce.Do(func() { a.full = f.extentsUpTo(a, ce) })
		return a.full, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.extentsUpTo(a, ce), nil
}

// extentsUpTo cuts the steps up to ce into extents. step < split, so there
// are no more extents than steps: the loop is bounded by the
// points-per-series limit.
func (f *Frontend) extentsUpTo(a *rangeAnalysis, ce int64) []extentData {
	start, step := a.start, a.step
	split := f.opts.SplitInterval.Milliseconds()
	grid := func(t int64) int64 { return start + floorDiv(t-start, step)*step } // last grid point ≤ t
	var out []extentData
	for ws := alignDown(start, split); ws <= ce; ws += split {
		x := extentData{ws: ws, a: grid(ws - 1 + step), b: min(grid(ws+split-1), ce)} // a: first grid point ≥ ws
		if ws <= start {
			x.a = start
		}
		if x.a > x.b {
			continue
		}
		// Tag by what the whole extent could ever read: its stored range
		// only grows inside [ws, ws+split).
		x.mint, x.maxt, x.reads = a.pl.dataRange(ws, ws+split-1, a.stepDur)
		x.tagged = true
		if x.reads {
			x.tags, x.tagged = a.pl.tags(x.mint, x.maxt)
		}
		out = append(out, x)
	}
	return out
}
