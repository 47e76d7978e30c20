package segments

import (
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
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
	// First, Last and Sum are set for StatsInteger only: the values of
	// the first and last sample (at MinTime and MaxTime) and their sum.
	First, Last, Sum float64
}

// MaxAbs returns the largest absolute value of an integer chunk: Count
// times MaxAbs bounds the absolute value of any sum of its values.
func (s ChunkStats) MaxAbs() float64 { return max(math.Abs(s.Min), math.Abs(s.Max)) }

// computeStats returns the statistics of a raw chunk; StatsNone for any
// chunk but XOR, and for an XOR chunk with a stale marker.
func computeStats(c chunkenc.Chunk, it chunkenc.Iterator) (ChunkStats, chunkenc.Iterator) {
	if c.Encoding() != chunkenc.EncXOR {
		return ChunkStats{}, it
	}
	it = c.Iterator(it)
	var s ChunkStats
	integer := true
	maxAbs := 0.0
	for it.Next() == chunkenc.ValFloat {
		_, v := it.At()
		if value.IsStaleNaN(v) {
			return ChunkStats{}, it
		}
		if s.Count == 0 {
			s.Min, s.Max, s.First = v, v, v
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
	if it.Err() != nil || s.Count == 0 {
		return ChunkStats{}, it
	}
	if integer && maxAbs*float64(s.Count) <= MaxExactSum {
		s.Kind = StatsInteger
		return s, it
	}
	return ChunkStats{Kind: StatsFloat, Count: s.Count, Min: s.Min, Max: s.Max}, it
}

// putStats appends the encoding of s (docs/format.md, "Chunk statistics").
func (e *encbuf) putStats(s ChunkStats) {
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
}

// stats decodes statistics written by putStats; ok is false for bytes no
// writer produces.
func (d *decbuf) stats() (s ChunkStats, ok bool) {
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
		if s.Count > 0 && (s.MaxAbs()*float64(s.Count) > MaxExactSum || s.Min > s.Max ||
			s.First < s.Min || s.First > s.Max || s.Last < s.Min || s.Last > s.Max) {
			return s, false
		}
	default:
		return s, false
	}
	return s, d.err == nil && s.Count > 0 && s.Count <= math.MaxUint16
}
