package query

import (
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// seriesReader reads the float samples of series into arrays for the
// direct evaluation of range functions (shard.go), reusing its buffers
// from series to series. It is used by one goroutine.
type seriesReader struct {
	it     chunkenc.Iterator
	srcs   [][]promql.FPoint // a buffer per source of a merged series
	bounds []int             // where each source's samples end in the array
	stale  int               // stale markers read since it was last reset
}

// read appends the samples of s in [mint, maxt] to dst, in time order,
// without stale markers: what the engine's iteration of s would give. A
// native histogram sample returns errPlain.
//
// A merged series of raw data is read source by source (each segment,
// then the head), each straight from its chunks into dst. Where the
// sources follow each other in time, as they do unless data were
// rewritten, that is the answer once stale markers are dropped; otherwise
// the sources are merged as arrays, the newest write winning a timestamp
// as in the series' own iterator. Anything else is read through its
// iterator.
func (r *seriesReader) read(dst []promql.FPoint, s storage.Series, mint, maxt int64) ([]promql.FPoint, error) {
	ms, ok := s.(*mergedSeries)
	if !ok || ms.win.agg != "" {
		r.it = s.Iterator(r.it)
		return appendFloats(dst, r.it, mint, maxt)
	}
	mint, maxt = max(mint, ms.mint), min(maxt, ms.maxt)
	if mint > maxt {
		return dst, nil
	}
	base := len(dst)
	r.bounds = r.bounds[:0]
	r.stale = 0
	var err error
	for _, src := range ms.segs {
		if dst, err = r.readSegment(dst, ms, src, mint, maxt); err != nil {
			return dst, err
		}
		r.bounds = append(r.bounds, len(dst))
	}
	if ms.hasHead {
		if dst, err = r.appendRaw(dst, ms.head.Iterator(), mint, maxt, nil); err != nil {
			return dst, err
		}
		r.bounds = append(r.bounds, len(dst))
	}
	// Do the sources follow each other in time?
	disjoint := true
	from, last := base, int64(math.MinInt64)
	for _, to := range r.bounds {
		if to == from {
			continue
		}
		if from > base && dst[from].T <= last {
			disjoint = false
			break
		}
		last = dst[to-1].T
		from = to
	}
	if disjoint {
		if r.stale > 0 {
			dst = appendFresh(dst[:base], dst[base:]) // in place: it writes behind what it reads
		}
		return dst, nil
	}
	for len(r.srcs) < len(r.bounds) {
		r.srcs = append(r.srcs, nil)
	}
	srcs := r.srcs[:len(r.bounds)]
	from = base
	for i, to := range r.bounds {
		srcs[i] = append(srcs[i][:0], dst[from:to]...)
		from = to
	}
	return appendMerged(dst[:base], srcs), nil
}

// readSegment appends the float samples of src in [mint, maxt] to dst,
// stale markers included (counted in r.stale), decoding XOR chunks
// straight into the array (segments.AppendXOR) and any other chunk through its
// iterator. A damaged chunk quarantines the segment, as the series' own
// iterator does.
func (r *seriesReader) readSegment(dst []promql.FPoint, ms *mergedSeries, src segSource, mint, maxt int64) ([]promql.FPoint, error) {
	for _, m := range src.metas {
		if m.Kind != segments.KindRaw || m.MaxTime < mint || m.MinTime > maxt {
			continue
		}
		enc, data, err := src.seg.ReadChunkData(m.Ref)
		if err == nil && enc != chunkenc.EncXOR {
			// Not floats: the series' iterator decides (a histogram
			// sends the query to the plain engine).
			it, err := ms.chunks(segSource{seg: src.seg, metas: []segments.ChunkMeta{m}}, segments.KindRaw)
			if err != nil {
				return dst, err
			}
			if dst, err = r.appendRaw(dst, it, mint, maxt, src.deleted); err != nil {
				return dst, err
			}
			continue
		}
		n := len(dst)
		if err == nil {
			var stale int
			dst, stale, err = segments.AppendXOR(dst, data, mint, maxt)
			r.stale += stale
			if err != nil {
				err = &segments.CorruptionError{Dir: src.seg.Dir(), Offset: -1, Err: fmt.Errorf("chunk %s: %w", m.Ref, err)}
			}
		}
		if err != nil {
			var ce *segments.CorruptionError
			if errors.As(err, &ce) && ms.set != nil {
				ms.set.Quarantine(src.seg.Meta().ID, err)
			}
			return dst, fmt.Errorf("read segment %s: %w", src.seg.Meta().ID, err)
		}
		if len(src.deleted) > 0 {
			kept := dst[:n]
			for _, p := range dst[n:] {
				if !inRanges(p.T, src.deleted) {
					kept = append(kept, p)
				}
			}
			dst = kept
		}
	}
	return dst, nil
}

// appendRaw is appendRaw counting stale markers in r.stale.
func (r *seriesReader) appendRaw(dst []promql.FPoint, it chunkenc.Iterator, mint, maxt int64, deleted [][2]int64) ([]promql.FPoint, error) {
	n := len(dst)
	dst, err := appendRaw(dst, it, mint, maxt, deleted)
	for _, p := range dst[n:] {
		if value.IsStaleNaN(p.F) {
			r.stale++
		}
	}
	return dst, err
}

// appendRaw appends the float samples of it in [mint, maxt] outside the
// deleted ranges to dst, stale markers included (a newer stale marker
// hides an older sample of the same timestamp).
func appendRaw(dst []promql.FPoint, it chunkenc.Iterator, mint, maxt int64, deleted [][2]int64) ([]promql.FPoint, error) {
	for vt := it.Seek(mint); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			return dst, errPlain
		}
		t, v := it.At()
		if t > maxt {
			break
		}
		if len(deleted) > 0 && inRanges(t, deleted) {
			continue
		}
		dst = append(dst, promql.FPoint{T: t, F: v})
	}
	return dst, it.Err()
}

func inRanges(t int64, ranges [][2]int64) bool {
	for _, r := range ranges {
		if t >= r[0] && t <= r[1] {
			return true
		}
	}
	return false
}

// appendMerged appends the union of srcs (each sorted by time, listed from
// oldest write to newest) to dst, sorted by time: of samples with the same
// timestamp the newest source's wins. Stale markers are dropped after the
// merge. Sources that follow each other in time are concatenated.
func appendMerged(dst []promql.FPoint, srcs [][]promql.FPoint) []promql.FPoint {
	disjoint := true
	last := int64(-1 << 63)
	first := true
	for _, s := range srcs {
		if len(s) == 0 {
			continue
		}
		if !first && s[0].T <= last {
			disjoint = false
			break
		}
		first = false
		last = s[len(s)-1].T
	}
	if disjoint {
		for _, s := range srcs {
			dst = appendFresh(dst, s)
		}
		return dst
	}
	pos := make([]int, len(srcs))
	for {
		best := -1
		var bt int64
		for i, s := range srcs {
			if pos[i] < len(s) && (best < 0 || s[pos[i]].T <= bt) {
				best, bt = i, s[pos[i]].T // on a tie the later source wins
			}
		}
		if best < 0 {
			return dst
		}
		p := srcs[best][pos[best]]
		for i, s := range srcs {
			if pos[i] < len(s) && s[pos[i]].T == bt {
				pos[i]++
			}
		}
		if !value.IsStaleNaN(p.F) {
			dst = append(dst, p)
		}
	}
}

// appendFresh appends the samples of src that are not stale markers.
func appendFresh(dst, src []promql.FPoint) []promql.FPoint {
	for _, p := range src {
		if !value.IsStaleNaN(p.F) {
			dst = append(dst, p)
		}
	}
	return dst
}
