package query

// Range functions from chunk statistics.
//
// Segments written in format version 3 or 4 carry statistics with every raw
// chunk's meta (segments.ChunkStats). For sum, avg, count, min and max over
// time, a window that covers a whole chunk takes the chunk's statistics
// instead of its samples, so a chunk that no window cuts is never read:
//
//   - count: a chunk with statistics holds no stale marker, so its count is
//     the samples the engine sees.
//   - min and max: Prometheus keeps the first sample and replaces it by each
//     later one that is smaller (greater), or by any while it holds NaN.
//     Folding per-chunk results by the same rule, in time order, gives the
//     rule's answer over all the samples (the rule picks the first
//     occurrence of the extreme, and so does the fold of first
//     occurrences), NaN included.
//   - sum and avg: Prometheus sums with Kahan-Neumaier compensation. Where
//     every value is an integer other than -0 and every partial sum is at
//     most 2^52 in absolute value, each addition is exact and the
//     compensation stays +0, so sum_over_time is the exact sum and
//     avg_over_time the exact sum divided by the count (its incremental
//     fallback starts only when a sum overflows). A window qualifies when
//     every chunk it touches has integer statistics (segments.StatsInteger)
//     and the sum over them of count times the largest absolute value is at
//     most 2^52; then the exact sum is the same whatever the order, and it
//     is computed from chunk sums, and from chunk sums less the first
//     sample's value where the window starts on a chunk's first sample
//     (a step aligned with chunk starts, as hourly windows over chunks cut
//     on the hour are).
//
// For fractional data, sums and averages take hour runs instead (format
// versions 5 to 7, segments.RunGrid): a window (a, b] that starts on the grid
// takes the compensated sum of the series' samples in (a, x] from the
// statistics of the last chunk X it covers whose run starts at a, when
// every chunk meeting (a, x] is in X's segment (so the run holds exactly
// the samples the window has there), and continues it with kahansum's
// arithmetic over the samples after x, decoding only those; a chunk of
// which the window holds only the first sample gives its value from its
// statistics (versions 6 and 7), so hourly windows over hour-aligned
// chunks read no chunk at all. The state
// after a prefix of the window is what Prometheus' loop holds there, so
// the result is its result, bit for bit; a run is only written where no
// partial sum can overflow, and a window whose remaining samples could
// make one (a value not finite or past segments.MaxRunAbs) is evaluated
// from its samples instead.
//
// Only series whose chunks do not overlap in time and have no deleted
// ranges are read this way; any other goes through arrays, as before. The
// head's samples are always read (they have no statistics). A window that
// cannot use statistics reads every chunk it touches and calls Prometheus'
// own function, as every window did before.

import (
	"context"
	"math"
	"slices"

	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/segments"
)

// statsFn is a range function that chunk statistics can answer.
type statsFn int

const (
	statsNone statsFn = iota
	statsCount
	statsSum
	statsAvg
	statsMin
	statsMax
)

var statsFns = map[string]statsFn{
	"count_over_time": statsCount,
	"sum_over_time":   statsSum,
	"avg_over_time":   statsAvg,
	"min_over_time":   statsMin,
	"max_over_time":   statsMax,
}

// block is a run of a series' samples: a segment chunk or the head's
// samples.
type block struct {
	minT, maxT int64
	// st is the chunk's statistics (its meta's: read only), or headStats
	// for the head: a block is made for every chunk of every series a
	// query reads, and a copy of the statistics was 104 of its bytes.
	st  *segments.ChunkStats
	seg *segments.Segment // nil for the head
	// meta points into the series' metas (shared with the series cache:
	// read only); nil for the head.
	meta *segments.ChunkMeta
	// integer and bound are, for the head, whether every sample is an
	// integer as StatsInteger requires, and count times the largest
	// absolute value; for a chunk they come from st.
	integer bool
	bound   float64
	// lo, hi delimit the block's samples in the series' array once read;
	// read says whether it has been. need says whether a window reads
	// its samples, up to needTo.
	lo, hi int
	read   bool
	need   bool
	needTo int64
}

// headStats are the head block's statistics: none (StatsNone).
var headStats segments.ChunkStats

// firstOnly reports whether a window ending at b holds only the block's
// first sample and the block's statistics give its value (format versions
// 6 and 7 for float chunks, and integer statistics).
func (bl *block) firstOnly(b int64) bool {
	return bl.seg != nil && bl.minT == b && bl.st.HasFirst
}

// needUpTo marks the block as read by a window ending at b.
func (bl *block) needUpTo(b int64) {
	if !bl.need || b > bl.needTo {
		bl.need, bl.needTo = true, b
	}
}

// coverage is how a window (a, b] meets a block.
type coverage int

const (
	covPartial    coverage = iota // read its samples
	covWhole                      // every sample
	covMinusFirst                 // every sample but the first
	covFirst                      // the first sample only
)

// cover says how the window (a, b] meets the block, which it intersects;
// a block that reaches outside [mint, maxt], where the series is read, is
// read.
func (bl *block) cover(a, b, mint, maxt int64) coverage {
	switch {
	case bl.seg == nil || bl.minT < mint || bl.maxT > maxt:
		return covPartial
	case a < bl.minT && bl.maxT <= b:
		return covWhole
	case a == bl.minT && bl.maxT <= b:
		return covMinusFirst
	case a < bl.minT && b == bl.minT:
		return covFirst
	}
	return covPartial
}

// usable reports whether fn can take the block's share c of a window from
// its statistics.
func (bl *block) usable(fn statsFn, c coverage) bool {
	switch {
	case c == covPartial || bl.st.Kind == segments.StatsNone:
		return false
	case fn == statsCount:
		return true
	case fn == statsMin || fn == statsMax:
		return c == covWhole || c == covFirst && bl.st.Kind == segments.StatsInteger
	}
	return bl.st.Kind == segments.StatsInteger
}

// statsReader evaluates one call on a series from blocks; it reuses its
// buffers from series to series.
type statsReader struct {
	mint, maxt int64 // what the series is read in
	blocks     []block
	covered    [4]int64 // blocks taken from statistics, by coverage
	head       []promql.FPoint
	steps      []stepPlan
	win        []promql.FPoint // a window read whole (runFallback)
	first      [1]promql.FPoint
}

// stepPlan is how a step's window is evaluated: from samples (runX < 0
// and !stats), from statistics, or from the hour run of block runX.
type stepPlan struct {
	stats bool
	runX  int
}

// seriesStats evaluates the call on ms into floats (see series); ok is
// false when the series is not one this path reads, and the caller reads
// it through arrays.
func (w *shardWorker) seriesStats(ctx context.Context, ms *mergedSeries, fn statsFn) (floats []promql.FPoint, ok bool, err error) {
	c, q := w.c, w.q
	mint, maxt := q.start-c.offset-c.rng+1, q.end-c.offset
	mint, maxt = max(mint, ms.mint), min(maxt, ms.maxt)
	sr := &w.sr
	sr.blocks = sr.blocks[:0]
	sr.mint, sr.maxt = mint, maxt
	for _, src := range ms.segs {
		if len(src.deleted) > 0 {
			return nil, false, nil
		}
		for i := range src.metas {
			m := &src.metas[i]
			if m.Kind != segments.KindRaw || m.MaxTime < mint || m.MinTime > maxt {
				continue
			}
			bl := block{minT: m.MinTime, maxT: m.MaxTime, st: &m.Stats, seg: src.seg, meta: m}
			if m.Stats.Kind == segments.StatsInteger {
				bl.integer, bl.bound = true, m.Stats.MaxAbs()*float64(m.Stats.Count)
			}
			sr.blocks = append(sr.blocks, bl)
		}
	}
	if len(sr.blocks) == 0 {
		return nil, false, nil // nothing to gain
	}
	sr.head = sr.head[:0]
	if ms.hasHead && mint <= maxt {
		if sr.head, err = appendRaw(sr.head, ms.head.Iterator(), mint, maxt, nil); err != nil {
			return nil, true, err
		}
		sr.head = appendFresh(sr.head[:0], sr.head)
		if len(sr.head) > 0 {
			bl := block{minT: sr.head[0].T, maxT: sr.head[len(sr.head)-1].T, st: &headStats, integer: true}
			maxAbs := 0.0
			for _, p := range sr.head {
				a := math.Abs(p.F)
				if p.F != math.Trunc(p.F) || a > segments.MaxExactSum || p.F == 0 && math.Signbit(p.F) {
					bl.integer = false
					break
				}
				maxAbs = max(maxAbs, a)
			}
			bl.bound = maxAbs * float64(len(sr.head))
			sr.blocks = append(sr.blocks, bl)
		}
	}
	if byMin := func(x, y block) int { return cmpInt64(x.minT, y.minT) }; !slices.IsSortedFunc(sr.blocks, byMin) {
		slices.SortFunc(sr.blocks, byMin) // sources are in write order, mostly time order already
	}
	for i := 1; i < len(sr.blocks); i++ {
		if sr.blocks[i].minT <= sr.blocks[i-1].maxT {
			return nil, false, nil // overlapping writes: merged through arrays
		}
	}

	// Which windows take statistics, and which blocks they leave to read.
	sr.steps = sr.steps[:0]
	first := 0
	q.eachStep(c, func(a, b int64) {
		for first < len(sr.blocks) && sr.blocks[first].maxT <= a {
			first++
		}
		if fn == statsSum || fn == statsAvg {
			if x := sr.runBlock(first, a, b); x >= 0 {
				for i := x + 1; i < len(sr.blocks) && sr.blocks[i].minT <= b; i++ {
					if bl := &sr.blocks[i]; !bl.firstOnly(b) {
						bl.needUpTo(b)
					}
				}
				sr.steps = append(sr.steps, stepPlan{runX: x})
				return
			}
		}
		use := false
		exact, bound := true, 0.0
		for i := first; i < len(sr.blocks) && sr.blocks[i].minT <= b; i++ {
			bl := &sr.blocks[i]
			if bl.usable(fn, bl.cover(a, b, mint, maxt)) {
				use = true
			}
			exact = exact && bl.integer
			bound += bl.bound
		}
		if (fn == statsSum || fn == statsAvg) && (!exact || bound > segments.MaxExactSum) {
			use = false
		}
		for i := first; i < len(sr.blocks) && sr.blocks[i].minT <= b; i++ {
			bl := &sr.blocks[i]
			if !use || !bl.usable(fn, bl.cover(a, b, mint, maxt)) {
				bl.needUpTo(b)
			}
		}
		sr.steps = append(sr.steps, stepPlan{stats: use, runX: -1})
	})

	// Read the blocks some window needs, in time order.
	pts := w.pts[:0]
	for i := range sr.blocks {
		bl := &sr.blocks[i]
		if !bl.need {
			continue
		}
		bl.lo, bl.read = len(pts), true
		if bl.seg == nil {
			pts = append(pts, sr.head...)
		} else {
			n := len(pts)
			src := segSource{seg: bl.seg, metas: []segments.ChunkMeta{*bl.meta}}
			w.r.stale = 0
			if pts, err = w.r.readSegment(pts, ms, src, mint, min(maxt, bl.needTo)); err != nil {
				w.pts = pts
				return nil, true, err
			}
			if w.r.stale > 0 {
				pts = appendFresh(pts[:n], pts[n:]) // in place: it writes behind what it reads
			}
		}
		bl.hi = len(pts)
	}
	w.pts = pts
	defer func() {
		for i, n := range sr.covered {
			if n > 0 {
				q.s.covered[i].Add(n)
				sr.covered[i] = 0
			}
		}
	}()

	// Evaluate each step.
	floats = w.dst
	lo, hi, step, first := 0, 0, 0, 0
	had := false
	runs := int64(0)
	defer func() {
		if runs > 0 { // once a series: the counter is shared by the shards
			q.s.runs.Add(runs)
		}
	}()
	for ts := q.start; ts <= q.end; ts += max(q.interval, 1) {
		if err := ctx.Err(); err != nil {
			return nil, true, err
		}
		b := ts - c.offset
		a := b - c.rng
		hi = after(pts, hi, b)
		lo = after(pts[:hi], lo, a)
		for first < len(sr.blocks) && sr.blocks[first].maxT <= a {
			first++
		}
		var v float64
		var has bool
		switch plan := sr.steps[step]; {
		case plan.runX >= 0:
			var ok bool
			if v, ok = sr.fromRun(fn, pts, plan.runX, b); ok {
				has = true
				runs++
			} else if v, has, err = w.runFallback(ctx, ms, ts, a, b); err != nil {
				return nil, true, err
			}
		case plan.stats:
			v, has = sr.fromStats(fn, pts, first, a, b)
		case lo < hi:
			v, has = w.call(ts, pts[lo:hi])
		}
		step++
		if has {
			floats = append(floats, promql.FPoint{T: ts, F: v})
			had = true
		} else if had {
			floats = append(floats, promql.FPoint{T: ts, F: staleNaN})
			had = false
		}
		if q.interval == 0 {
			break
		}
	}
	return floats, true, nil
}

// runBlock returns the block whose hour run the window (a, b] of a sum or
// average can start from, or -1: the last block from first on that ends
// within the window, has a run starting at a, and such that every block
// meeting (a, its end] is a chunk of its segment.
func (sr *statsReader) runBlock(first int, a, b int64) int {
	if a < sr.mint-1 || segments.RunStart(a+1) != a || first >= len(sr.blocks) || sr.blocks[first].seg == nil {
		return -1 // the window starts off the grid, or before what was read
	}
	seg, x := sr.blocks[first].seg, -1
	for i := first; i < len(sr.blocks) && sr.blocks[i].maxT <= b && sr.blocks[i].seg == seg; i++ {
		if bl := &sr.blocks[i]; bl.st.Run && segments.RunStart(bl.maxT) == a {
			x = i
		}
	}
	return x
}

// fromRun evaluates a sum or average over the window (a, b] from the hour
// run of block x and the samples read after it, as Prometheus' loop
// continues from that state; ok is false when a remaining sample could
// make a partial sum overflow.
func (sr *statsReader) fromRun(fn statsFn, pts []promql.FPoint, x int, b int64) (float64, bool) {
	st := sr.blocks[x].st
	n, sum, c := st.RunCount, st.RunSum, st.RunC
	end := sr.blocks[x].maxT
	for i := x + 1; i < len(sr.blocks) && sr.blocks[i].minT <= b; i++ {
		bl := &sr.blocks[i]
		win := pts[bl.lo:bl.hi]
		if bl.firstOnly(b) {
			// The window holds the chunk's first sample alone: its value
			// is in the statistics.
			sr.first[0] = promql.FPoint{T: bl.minT, F: bl.st.First}
			win = sr.first[:]
		}
		for _, p := range win {
			if p.T <= end || p.T > b {
				continue
			}
			// With the run's absolute values adding up to at most
			// MaxRunAbs, fewer than 2^20 more of at most as much each
			// cannot overflow a partial sum.
			if math.IsNaN(p.F) || math.Abs(p.F) > segments.MaxRunAbs || n-st.RunCount >= 1<<20 {
				return 0, false
			}
			sum, c = kahanInc(p.F, sum, c)
			n++
		}
	}
	if fn == statsSum {
		return sum + c, true // no partial sum overflowed
	}
	return sum/float64(n) + c/float64(n), true
}

// runFallback evaluates the window (a, b] at ts from its samples, read
// from every block that meets it.
func (w *shardWorker) runFallback(ctx context.Context, ms *mergedSeries, ts, a, b int64) (float64, bool, error) {
	sr := &w.sr
	win := sr.win[:0]
	for i := range sr.blocks {
		bl := &sr.blocks[i]
		if bl.maxT <= a || bl.minT > b {
			continue
		}
		if bl.seg == nil {
			for _, p := range sr.head {
				if p.T > a && p.T <= b {
					win = append(win, p)
				}
			}
			continue
		}
		n := len(win)
		src := segSource{seg: bl.seg, metas: []segments.ChunkMeta{*bl.meta}}
		w.r.stale = 0
		var err error
		if win, err = w.r.readSegment(win, ms, src, a+1, b); err != nil {
			sr.win = win
			return 0, false, err
		}
		if w.r.stale > 0 {
			win = appendFresh(win[:n], win[n:])
		}
	}
	sr.win = win
	if len(win) == 0 {
		return 0, false, nil
	}
	v, ok := w.call(ts, win)
	return v, ok, nil
}

// eachStep calls f with the window (a, b] of every step of the query.
func (q *shardQuery) eachStep(c preCall, f func(a, b int64)) {
	for ts := q.start; ts <= q.end; ts += max(q.interval, 1) {
		b := ts - c.offset
		f(b-c.rng, b)
		if q.interval == 0 {
			return
		}
	}
}

// call evaluates the call on one window's samples with Prometheus' own
// function, or its copy in shard_kahan.go.
func (w *shardWorker) call(ts int64, win []promql.FPoint) (float64, bool) {
	if w.c.floats != nil && len(win) > 0 {
		return w.c.floats(win), true
	}
	w.matrix[0].Floats = win
	w.enh.Ts = ts
	vec, annos := w.c.fn(nil, w.matrix, w.c.args, &w.enh)
	w.enh.Out = vec[:0]
	if len(annos) > 0 {
		w.annos = w.annos.Merge(annos)
	}
	if len(vec) == 0 {
		return 0, false
	}
	return vec[0].F, true
}

// fromStats evaluates fn over the window (a, b] from the statistics of the
// blocks that allow it and the samples of the others, starting at block
// first (the first that ends after a).
func (sr *statsReader) fromStats(fn statsFn, pts []promql.FPoint, first int, a, b int64) (float64, bool) {
	var (
		n    int
		sum  float64
		ext  float64 // min or max so far
		have bool
	)
	fold := func(v float64) {
		switch {
		case !have:
			ext, have = v, true
		case fn == statsMin && (v < ext || math.IsNaN(ext)):
			ext = v
		case fn == statsMax && (v > ext || math.IsNaN(ext)):
			ext = v
		}
	}
	for i := first; i < len(sr.blocks) && sr.blocks[i].minT <= b; i++ {
		bl := &sr.blocks[i]
		c := bl.cover(a, b, sr.mint, sr.maxt)
		if !bl.usable(fn, c) {
			// Read: the samples of the block in the window.
			for _, p := range pts[bl.lo:bl.hi] {
				if p.T <= a || p.T > b {
					continue
				}
				n++
				sum += p.F
				fold(p.F)
			}
			continue
		}
		sr.covered[c]++
		switch c {
		case covWhole:
			n += bl.st.Count
			sum += bl.st.Sum
			if fn == statsMin {
				fold(bl.st.Min)
			} else {
				fold(bl.st.Max)
			}
		case covMinusFirst:
			n += bl.st.Count - 1
			sum += bl.st.Sum - bl.st.First
		case covFirst:
			n++
			sum += bl.st.First
			fold(bl.st.First)
		}
	}
	if n == 0 {
		return 0, false
	}
	switch fn {
	case statsCount:
		return float64(n), true
	case statsSum:
		return sum, true
	case statsAvg:
		return sum / float64(n), true
	}
	return ext, true
}
