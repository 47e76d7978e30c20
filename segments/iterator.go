package segments

import (
	"math"
	"sort"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The iterators below combine chunk iterators: a chain of consecutive
// chunks, a merge of overlapping sources where the last listed wins, and a
// bound on the time range. The head and every segment reader share them.

// FloatOnly provides AtST and the histogram methods of chunkenc.Iterator
// for iterators that only ever hold floats: embed it.
type FloatOnly struct{}

func (FloatOnly) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("segments: float-only iterator has no histograms")
}

func (FloatOnly) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("segments: float-only iterator has no histograms")
}

func (FloatOnly) AtST() int64 { return 0 }

// SeekByNext is Seek for an iterator that moves forward only, by Next: it
// stays on the current sample if that is at or after t (cur is the type
// of the current sample; ValNone when it is on none, before the first
// sample or after the last), else calls Next until a sample is at or
// after t, and returns that sample's type (ValNone: none is).
func SeekByNext(it chunkenc.Iterator, cur chunkenc.ValueType, t int64) chunkenc.ValueType {
	if cur != chunkenc.ValNone && it.AtT() >= t {
		return cur
	}
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if it.AtT() >= t {
			return vt
		}
	}
	return chunkenc.ValNone
}

// SeekFloatByNext is SeekByNext for a float-only iterator (FloatOnly):
// has says whether it is on a sample.
func SeekFloatByNext(it chunkenc.Iterator, has bool, t int64) chunkenc.ValueType {
	cur := chunkenc.ValNone
	if has {
		cur = chunkenc.ValFloat
	}
	return SeekByNext(it, cur, t)
}

// Sample is one sample: a float V, or a native histogram when H (integer
// counts) or FH (float counts) is set. At most one of H and FH is set.
type Sample struct {
	T  int64
	V  float64
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// Type returns the kind of value s holds.
func (s *Sample) Type() chunkenc.ValueType {
	switch {
	case s.H != nil:
		return chunkenc.ValHistogram
	case s.FH != nil:
		return chunkenc.ValFloatHistogram
	}
	return chunkenc.ValFloat
}

// Encoding returns the chunk encoding that holds samples of s's kind.
func (s *Sample) Encoding() chunkenc.Encoding {
	switch {
	case s.H != nil:
		return chunkenc.EncHistogram
	case s.FH != nil:
		return chunkenc.EncFloatHistogram
	}
	return chunkenc.EncXOR
}

// copyHistogram returns src copied into dst, or a new copy when dst is nil,
// as chunkenc.Iterator.AtHistogram promises.
func copyHistogram(dst, src *histogram.Histogram) *histogram.Histogram {
	if dst == nil {
		return src.Copy()
	}
	src.CopyTo(dst)
	return dst
}

// copyFloatHistogram is copyHistogram for float histograms.
func copyFloatHistogram(dst, src *histogram.FloatHistogram) *histogram.FloatHistogram {
	if dst == nil {
		return src.Copy()
	}
	src.CopyTo(dst)
	return dst
}

// ReadSample returns the sample it is on, of type vt (not ValNone). The
// histograms returned are copies the caller owns; hs and fhs, when not nil,
// are reused.
func ReadSample(it chunkenc.Iterator, vt chunkenc.ValueType, hs *histogram.Histogram, fhs *histogram.FloatHistogram) Sample {
	switch vt {
	case chunkenc.ValHistogram:
		t, h := it.AtHistogram(hs)
		return Sample{T: t, H: h}
	case chunkenc.ValFloatHistogram:
		t, fh := it.AtFloatHistogram(fhs)
		return Sample{T: t, FH: fh}
	}
	t, v := it.At()
	return Sample{T: t, V: v}
}

// sliceIterator iterates samples sorted by time.
type sliceIterator struct {
	s []Sample
	i int
}

// NewSliceIterator returns an iterator over samples, which must be sorted by
// time without duplicates.
func NewSliceIterator(s []Sample) chunkenc.Iterator { return &sliceIterator{s: s, i: -1} }

func (it *sliceIterator) Next() chunkenc.ValueType {
	if it.i+1 >= len(it.s) {
		it.i = len(it.s)
		return chunkenc.ValNone
	}
	it.i++
	return it.s[it.i].Type()
}

func (it *sliceIterator) Seek(t int64) chunkenc.ValueType {
	if it.i < 0 {
		it.i = 0
	}
	for ; it.i < len(it.s); it.i++ {
		if it.s[it.i].T >= t {
			return it.s[it.i].Type()
		}
	}
	return chunkenc.ValNone
}

func (it *sliceIterator) At() (int64, float64) { return it.s[it.i].T, it.s[it.i].V }
func (it *sliceIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	x := &it.s[it.i]
	if x.H == nil {
		panic("segments: AtHistogram on a sample that is not an integer histogram")
	}
	return x.T, copyHistogram(h, x.H)
}

func (it *sliceIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	x := &it.s[it.i]
	switch {
	case x.FH != nil:
		return x.T, copyFloatHistogram(fh, x.FH)
	case x.H != nil:
		return x.T, x.H.ToFloat(fh)
	}
	panic("segments: AtFloatHistogram on a float sample")
}
func (it *sliceIterator) AtT() int64  { return it.s[it.i].T }
func (it *sliceIterator) AtST() int64 { return 0 }
func (it *sliceIterator) Err() error  { return nil }

// chainIterator iterates a list of chunks sorted by time that do not
// overlap, as one sequence. The chunks may be of different encodings.
type chainIterator struct {
	chunks []chunkenc.Chunk
	maxTs  []int64 // maxTs[i] is the last timestamp of chunks[i]
	i      int
	cur    chunkenc.Iterator
	err    error
}

// NewChainIterator returns an iterator over chunks, which must be sorted by
// time and must not overlap. maxTs holds each chunk's last timestamp, used to
// skip whole chunks on Seek.
func NewChainIterator(chunks []chunkenc.Chunk, maxTs []int64) chunkenc.Iterator {
	return &chainIterator{chunks: chunks, maxTs: maxTs, i: -1}
}

func (it *chainIterator) nextChunk() bool {
	if it.cur != nil {
		if err := it.cur.Err(); err != nil {
			it.err = err
			return false
		}
	}
	it.i++
	if it.i >= len(it.chunks) {
		return false
	}
	it.cur = it.chunks[it.i].Iterator(it.cur)
	return true
}

func (it *chainIterator) Next() chunkenc.ValueType {
	// Past the last chunk (a Seek past the end may leave cur on an earlier
	// chunk, mid-way), the iterator is exhausted.
	if it.err != nil || it.i >= len(it.chunks) {
		return chunkenc.ValNone
	}
	for {
		if it.cur != nil {
			if vt := it.cur.Next(); vt != chunkenc.ValNone {
				return vt
			}
		}
		if !it.nextChunk() {
			return chunkenc.ValNone
		}
	}
}

func (it *chainIterator) Seek(t int64) chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	if it.cur != nil && it.i < len(it.chunks) && it.maxTs[it.i] >= t {
		if vt := it.cur.Seek(t); vt != chunkenc.ValNone {
			return vt
		}
	}
	// Skip, without opening them, the chunks that end before t.
	if j := sort.Search(len(it.maxTs), func(j int) bool { return it.maxTs[j] >= t }); j-1 > it.i {
		if it.cur != nil {
			if err := it.cur.Err(); err != nil {
				it.err = err
				return chunkenc.ValNone
			}
		}
		it.i = j - 1
	}
	for it.nextChunk() {
		if vt := it.cur.Seek(t); vt != chunkenc.ValNone {
			return vt
		}
	}
	return chunkenc.ValNone
}

func (it *chainIterator) At() (int64, float64) { return it.cur.At() }
func (it *chainIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.cur.AtHistogram(h)
}

func (it *chainIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.cur.AtFloatHistogram(fh)
}
func (it *chainIterator) AtT() int64  { return it.cur.AtT() }
func (it *chainIterator) AtST() int64 { return 0 }
func (it *chainIterator) Err() error {
	if it.err != nil {
		return it.err
	}
	if it.cur != nil {
		return it.cur.Err()
	}
	return nil
}

// mergeIterator merges iterators sorted by time. Where several hold the same
// timestamp, the value of the one that comes last in the list wins, so
// callers list their sources from oldest write to newest.
//
// Sources usually overlap little (consecutive blocks, the head after the
// segments), so after a full scan the source that gave the smallest
// timestamp keeps giving samples, without a scan, while they stay below
// every other source's.
type mergeIterator struct {
	its   []chunkenc.Iterator
	ts    []int64              // ts[i]: the timestamp its[i] is on; math.MaxInt64 when exhausted
	vts   []chunkenc.ValueType // vts[i]: the type of the value its[i] is on
	lead  int                  // source of the last sample if it alone had that timestamp; -1 otherwise
	bound int64                // the smallest timestamp of the other sources when lead was chosen
	t     int64
	vt    chunkenc.ValueType // the type of the current value: v, h or fh
	v     float64
	h     *histogram.Histogram // reused: a copy of the current histogram
	fh    *histogram.FloatHistogram
	src   int // the source of the last sample taken; -1 before the first
	begun bool
	err   error
}

// NewMergeIterator merges its, each sorted by time, into one sequence
// without duplicate timestamps; for equal timestamps the iterator listed
// last wins. With one iterator it returns that iterator.
func NewMergeIterator(its []chunkenc.Iterator) chunkenc.Iterator {
	switch len(its) {
	case 0:
		return chunkenc.NewNopIterator()
	case 1:
		return its[0]
	}
	return &mergeIterator{its: its, ts: make([]int64, len(its)), vts: make([]chunkenc.ValueType, len(its)), lead: -1, src: -1}
}

// take copies the value source i is on, before the source moves on.
//
// A histogram's NotCounterReset hint says it continues the sample before it
// in the same chunk; when the previous sample came from another source,
// that no longer holds, and the hint becomes UnknownCounterReset so that
// PromQL detects resets itself (as Prometheus' chainSampleIterator does).
func (m *mergeIterator) take(i int) {
	m.vt = m.vts[i]
	switch m.vt {
	case chunkenc.ValHistogram:
		m.t, m.h = m.its[i].AtHistogram(m.h)
		if i != m.src && m.h.CounterResetHint == histogram.NotCounterReset {
			m.h.CounterResetHint = histogram.UnknownCounterReset
		}
	case chunkenc.ValFloatHistogram:
		m.t, m.fh = m.its[i].AtFloatHistogram(m.fh)
		if i != m.src && m.fh.CounterResetHint == histogram.NotCounterReset {
			m.fh.CounterResetHint = histogram.UnknownCounterReset
		}
	default:
		m.t, m.v = m.its[i].At()
	}
	m.src = i
}

// set records where source i is after a Next or Seek that returned vt.
func (m *mergeIterator) set(i int, vt chunkenc.ValueType) {
	m.vts[i] = vt
	if vt == chunkenc.ValNone {
		m.ts[i] = math.MaxInt64
		if err := m.its[i].Err(); err != nil && m.err == nil {
			m.err = err
		}
		return
	}
	m.ts[i] = m.its[i].AtT()
}

func (m *mergeIterator) Next() chunkenc.ValueType {
	if !m.begun {
		m.begun = true
		for i, it := range m.its {
			m.set(i, it.Next())
		}
	}
	return m.pick()
}

// pick consumes the smallest timestamp among the sources.
func (m *mergeIterator) pick() chunkenc.ValueType {
	if m.err != nil {
		return chunkenc.ValNone
	}
	if i := m.lead; i >= 0 && m.ts[i] < m.bound {
		m.take(i)
		m.set(i, m.its[i].Next())
		return m.vt
	}
	mint, second, n := int64(math.MaxInt64), int64(math.MaxInt64), 0
	for _, t := range m.ts {
		switch {
		case t < mint:
			second, mint, n = mint, t, 1
		case t == mint:
			n++
		case t < second:
			second = t
		}
	}
	if mint == math.MaxInt64 {
		m.lead = -1
		m.vt = chunkenc.ValNone
		return chunkenc.ValNone
	}
	m.lead = -1
	for i, t := range m.ts {
		if t != mint {
			continue
		}
		m.take(i) // the last source with mint wins
		if n == 1 {
			m.lead, m.bound = i, second
		}
		m.set(i, m.its[i].Next())
	}
	if m.err != nil {
		return chunkenc.ValNone
	}
	return m.vt
}

func (m *mergeIterator) Seek(t int64) chunkenc.ValueType {
	if m.begun && m.err == nil && m.vt != chunkenc.ValNone && m.t >= t {
		return m.vt
	}
	m.lead = -1
	for i, it := range m.its {
		if !m.begun || m.ts[i] < t && m.ts[i] != math.MaxInt64 {
			m.set(i, it.Seek(t))
		}
	}
	m.begun = true
	return m.pick()
}

func (m *mergeIterator) At() (int64, float64) { return m.t, m.v }
func (m *mergeIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return m.t, copyHistogram(h, m.h)
}

func (m *mergeIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	if m.vt == chunkenc.ValHistogram {
		return m.t, m.h.ToFloat(fh)
	}
	return m.t, copyFloatHistogram(fh, m.fh)
}
func (m *mergeIterator) AtT() int64  { return m.t }
func (m *mergeIterator) AtST() int64 { return 0 }
func (m *mergeIterator) Err() error  { return m.err }

// boundedIterator limits an iterator to [mint, maxt].
type boundedIterator struct {
	chunkenc.Iterator
	mint, maxt  int64
	begun, done bool
}

// NewBoundedIterator returns it restricted to samples in [mint, maxt].
func NewBoundedIterator(it chunkenc.Iterator, mint, maxt int64) chunkenc.Iterator {
	return &boundedIterator{Iterator: it, mint: mint, maxt: maxt}
}

func (b *boundedIterator) Next() chunkenc.ValueType {
	if b.done {
		return chunkenc.ValNone
	}
	var vt chunkenc.ValueType
	if !b.begun {
		b.begun = true
		vt = b.Iterator.Seek(b.mint)
	} else {
		vt = b.Iterator.Next()
	}
	if vt == chunkenc.ValNone || b.Iterator.AtT() > b.maxt {
		b.done = true
		return chunkenc.ValNone
	}
	return vt
}

func (b *boundedIterator) Seek(t int64) chunkenc.ValueType {
	if b.done {
		return chunkenc.ValNone
	}
	b.begun = true
	if t < b.mint {
		t = b.mint
	}
	vt := b.Iterator.Seek(t)
	if vt == chunkenc.ValNone || b.Iterator.AtT() > b.maxt {
		b.done = true
		return chunkenc.ValNone
	}
	return vt
}
