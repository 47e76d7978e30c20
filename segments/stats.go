package segments

import (
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/kahansum"
)

// StatsKind says which statistics a chunk carries.
type StatsKind uint8

const (
	// StatsNone: no statistics (a histogram or rollup chunk, a chunk with
	// a stale marker, or a segment written before statistics existed).
	StatsNone StatsKind = iota
	// StatsFloat: Count, Min and Max.
	StatsFloat
	// StatsInteger: Count, Min, Max, First, Last and Sum, where every
	// value is an integer other than -0 and Count times the largest
	// absolute value is at most MaxExactSum, so that any sum of the
	// chunk's values, in any order and grouping, is exact in float64.
	StatsInteger
	numStatsKinds
)

// MaxExactSum bounds the absolute values of integer statistics: with every
// partial sum at most 2^52 in absolute value, float64 adds integers
// exactly.
const MaxExactSum = 1 << 52

// ChunkStats are the statistics of a raw float chunk, stored with its meta
// in the index (format versions 3 and 4), so that a query can use them for
// a window that covers the whole chunk instead of decoding it. They cover
// every sample of the chunk; a chunk holding a stale marker has none.
//
// Min and Max are what Prometheus' min_over_time and max_over_time give
// over the chunk's samples in order: the first sample, replaced by each
// later one that is smaller (greater), or by any sample while the kept
// value is NaN. Folding the Min of consecutive chunks by the same rule
// gives the rule's answer over all their samples.
type ChunkStats struct {
	Kind  StatsKind
	Count int
	Min   float64
	Max   float64
	// First, Last and Sum are set for StatsInteger: the values of the
	// first and last sample (at MinTime and MaxTime) and their sum. First
	// is also set for StatsFloat in format versions 6 and 7, where
	// HasFirst says so (and for StatsInteger).
	First, Last, Sum float64
	HasFirst         bool
	// Run is set (format versions 5 and 6) for StatsFloat when the
	// chunk's last sample ends a summable hour run: see RunGrid. (An
	// integer chunk's sums are exact from its own statistics.) RunCount is the number of samples
	// of the run up to and including the chunk's last one, RunSum and
	// RunC the compensated sum of their values as Prometheus'
	// avg_over_time computes it (the first value, then kahansum.Inc of
	// each next one).
	Run      bool
	RunCount int
	RunSum   float64
	RunC     float64
}

// RunGrid is the grid of hour runs, in milliseconds: a series' hour run
// of grid point g is its samples in a segment with timestamps in
// (g, g+RunGrid], the samples a window (g, g+RunGrid] of
// sum_over_time or avg_over_time reads. Prometheus sums a window in time
// order with Kahan-Neumaier compensation, which no per-chunk summary can
// be combined into bit for bit; but the state of that sum after any
// prefix of the window is what the rest of the window continues from.
// So the statistics of a float chunk of format version 6 or 7 give the state
// after the chunk's last sample of the run that sample belongs to, which
// may have started in earlier chunks of the series in the same segment:
// a window starting on the grid takes the state of the last chunk it
// covers and adds only the samples after it.
//
// A run is summable when every value in it is finite, the first is not
// -0 (where sum_over_time, adding it to +0, starts from +0) and the sum
// of the absolute values stays at most MaxRunAbs, so that no partial sum
// overflows (avg_over_time then never switches to its incremental mean);
// a run through a chunk without statistics (a stale marker, a histogram)
// is not.
const RunGrid = 3_600_000

// MaxRunAbs bounds the sum of the absolute values of a summable run; the
// reader may add values as large again to a run's sum without
// overflowing.
const MaxRunAbs = 0x1p1000

// RunStart returns the grid point whose hour run holds a sample at t: the
// greatest multiple of RunGrid below t.
func RunStart(t int64) int64 {
	g := (t - 1) / RunGrid * RunGrid
	if t-1 < 0 && (t-1)%RunGrid != 0 {
		g -= RunGrid
	}
	return g
}

// runState is the hour run of the series being written, carried from
// chunk to chunk.
type runState struct {
	has, ok bool
	g       int64 // the run's grid point
	n       int
	abs     float64
	sum, c  float64
}

// add adds the sample (t, v) to the run.
func (r *runState) add(t int64, v float64) {
	if g := RunStart(t); !r.has || g != r.g {
		*r = runState{has: true, ok: true, g: g}
	}
	if !r.ok {
		return
	}
	r.abs += math.Abs(v)
	if math.IsNaN(v) || math.IsInf(v, 0) || r.n == 0 && v == 0 && math.Signbit(v) || r.abs > MaxRunAbs {
		r.ok = false
		return
	}
	if r.n == 0 {
		r.sum, r.c = v, 0
	} else {
		r.sum, r.c = kahansum.Inc(v, r.sum, r.c)
	}
	r.n++
}

// spoil makes the run holding t not summable (a chunk without statistics
// ends there).
func (r *runState) spoil(t int64) {
	*r = runState{has: true, g: RunStart(t)}
}

// MaxAbs returns the largest absolute value of an integer chunk: Count
// times MaxAbs bounds the absolute value of any sum of its values.
func (s ChunkStats) MaxAbs() float64 { return max(math.Abs(s.Min), math.Abs(s.Max)) }

// computeStats returns the statistics of a raw chunk; StatsNone for any
// chunk but XOR, and for an XOR chunk with a stale marker. With run, the
// series' hour run carried from its previous chunks, it also adds the
// chunk's samples to the run and gives its state at the chunk's end. It
// decodes the chunk into buf (AppendXOR: a flush computes the statistics
// of every chunk it writes, and chunkenc's iterator, a call per sample,
// was most of a flush's CPU) and returns buf for the next call.
func computeStats(c chunkenc.Chunk, buf []xorPoint, run *runState) (ChunkStats, []xorPoint) {
	keep := run != nil // a first value is written with runs
	if run == nil {
		run = &runState{} // not kept
	}
	if c.Encoding() != chunkenc.EncXOR {
		if _, maxt, err := chunkTimes(c); err == nil {
			run.spoil(maxt)
		}
		return ChunkStats{}, buf
	}
	pts, stale, err := AppendXOR(buf[:0], c.Bytes(), math.MinInt64, math.MaxInt64)
	if len(pts) == 0 {
		return ChunkStats{}, pts
	}
	lastT := pts[len(pts)-1].T
	if err != nil || stale > 0 {
		run.spoil(lastT)
		return ChunkStats{}, pts
	}
	var s ChunkStats
	integer := true
	maxAbs := 0.0
	for _, p := range pts {
		v := p.F
		run.add(p.T, v)
		if s.Count == 0 {
			s.Min, s.Max, s.First, s.HasFirst = v, v, v, true
		} else {
			if v < s.Min || math.IsNaN(s.Min) {
				s.Min = v
			}
			if v > s.Max || math.IsNaN(s.Max) {
				s.Max = v
			}
		}
		s.Last = v
		s.Count++
		if integer {
			a := math.Abs(v)
			if v != math.Trunc(v) || a > MaxExactSum || v == 0 && math.Signbit(v) {
				integer = false
				continue
			}
			maxAbs = max(maxAbs, a)
			s.Sum += v
		}
	}
	if integer && maxAbs*float64(s.Count) <= MaxExactSum {
		s.Kind = StatsInteger // its sums are exact: no run needed
		return s, pts
	}
	if run.ok && run.g == RunStart(lastT) {
		s.Run, s.RunCount, s.RunSum, s.RunC = true, run.n, run.sum, run.c
	}
	f := ChunkStats{Kind: StatsFloat, Count: s.Count, Min: s.Min, Max: s.Max,
		Run: s.Run, RunCount: s.RunCount, RunSum: s.RunSum, RunC: s.RunC}
	if keep {
		f.First, f.HasFirst = s.First, true
	}
	return f, pts
}

// putStats appends the encoding of s (docs/format.md, "Chunk statistics");
// runs (format versions 5 to 7) adds the hour run after the statistics of
// a chunk that has any, and first (versions 6 and 7) the first value of a
// float chunk after that.
func (e *encbuf) putStats(s ChunkStats, runs, first bool) {
	e.putByte(byte(s.Kind))
	switch s.Kind {
	case StatsFloat:
		e.putUvarint(uint64(s.Count))
		e.putBE64(math.Float64bits(s.Min))
		e.putBE64(math.Float64bits(s.Max))
	case StatsInteger:
		e.putUvarint(uint64(s.Count))
		for _, v := range [...]float64{s.Min, s.Max, s.First, s.Last, s.Sum} {
			e.putVarint(int64(v))
		}
	}
	if !runs || s.Kind == StatsNone {
		return
	}
	if !s.Run {
		e.putUvarint(0)
	} else {
		e.putUvarint(uint64(s.RunCount))
		e.putBE64(math.Float64bits(s.RunSum))
		e.putBE64(math.Float64bits(s.RunC))
	}
	if first && s.Kind == StatsFloat {
		e.putBE64(math.Float64bits(s.First))
	}
}

// stats decodes statistics written by putStats; ok is false for bytes no
// writer produces.
func (d *decbuf) stats(runs, first bool) (s ChunkStats, ok bool) {
	s.Kind = StatsKind(d.byte())
	switch s.Kind {
	case StatsNone:
		return s, true
	case StatsFloat:
		s.Count = int(d.uvarint())
		s.Min = math.Float64frombits(d.be64())
		s.Max = math.Float64frombits(d.be64())
	case StatsInteger:
		s.Count = int(d.uvarint())
		vs := [...]*float64{&s.Min, &s.Max, &s.First, &s.Last, &s.Sum}
		for _, v := range vs {
			*v = float64(d.varint())
		}
		s.HasFirst = true
		if s.Count > 0 && (s.MaxAbs()*float64(s.Count) > MaxExactSum || s.Min > s.Max ||
			s.First < s.Min || s.First > s.Max || s.Last < s.Min || s.Last > s.Max) {
			return s, false
		}
	default:
		return s, false
	}
	if runs && s.Kind != StatsNone {
		if n := d.uvarint(); n > 0 {
			s.Run, s.RunCount = true, int(n)
			s.RunSum = math.Float64frombits(d.be64())
			s.RunC = math.Float64frombits(d.be64())
			if n > math.MaxInt32 || math.IsNaN(s.RunSum) || math.IsInf(s.RunSum, 0) ||
				math.IsNaN(s.RunC) || math.IsInf(s.RunC, 0) || math.Abs(s.RunSum) > MaxRunAbs {
				return s, false
			}
		}
		if first && s.Kind == StatsFloat {
			s.First, s.HasFirst = math.Float64frombits(d.be64()), true
		}
	}
	return s, d.err == nil && s.Count > 0 && s.Count <= math.MaxUint16
}
