package query

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
)

// Queryable is the storage.Queryable over Strata's data: the head and the
// segments of a set, merged. Where several hold a sample at the same
// timestamp, the newest write wins: the head over every segment, and a
// segment over those with smaller IDs.
type Queryable struct {
	head *buffer.Head
	set  *segments.Set // nil: the head only

	// MinTime, when set, returns the oldest timestamp inside retention for
	// data of a resolution (milliseconds; 0 is raw). Reads never return
	// older data, even while a partly expired segment is still on disk.
	MinTime func(resolution int64) int64

	// Remote, when set, gives the segments that only object storage holds
	// (segments/remote's Tier): reads span head, local segments and those.
	Remote RemoteSegments

	// MaxSelectBytes bounds, in bytes, what the selections of one querier
	// (one query: all its selectors together) may hold in memory: per
	// series selected, its label set when it is a copy, its chunk
	// references and a fixed overhead (SelectedSeriesBytes). A Select that
	// would go past it fails with an error wrapping ErrSelectLimit, while
	// it selects. Samples are not counted here: the engine bounds them
	// (Options.MaxSamples). Zero means no limit.
	MaxSelectBytes int64

	// MaxSelectSeries bounds how many distinct series one querier (one
	// evaluation of a query: all its selectors together) may select. A
	// selection that goes past it fails with an error wrapping
	// ErrTooManySeries while it selects, and so does every other selection
	// of the querier. Listings for labels only (hints.Func "series") do not
	// count. Zero means no limit.
	MaxSelectSeries int
}

// errLabelsOnly is the error of reading the samples of a series selected
// for its labels only (hints.Func "series").
var errLabelsOnly = errors.New("series selected for its labels only (hints.Func \"series\"): it has no samples to read")

// ErrTooManySeries is wrapped by the error of a selection that makes one
// querier select more than Queryable.MaxSelectSeries distinct series.
var ErrTooManySeries = errors.New("query selects too many series")

// RemoteSegments is the tier of segments that only object storage holds.
type RemoteSegments interface {
	// Acquire returns the bucket's segments overlapping [mint, maxt] that
	// none of local (the segments read from the local set) holds and want
	// accepts, with their tombstones, held until release; an error when
	// they cannot be read.
	Acquire(ctx context.Context, mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) (segs []*segments.Segment, tombs segments.TombstoneView, release func(), err error)
	// Metas returns the metas of the bucket's segments.
	Metas() []segments.Meta
}

// ErrSelectLimit is wrapped by the error of a Select that would make its
// query hold more than Queryable.MaxSelectBytes of selected series.
var ErrSelectLimit = errors.New("query selects too many series")

// SelectedSeriesBytes is what a selected series costs at least against
// Queryable.MaxSelectBytes: the merged series, the head's reference, the
// engine's slot for it. Measured, it is within a factor of two of the heap
// a selection of series without chunks adds.
const SelectedSeriesBytes = 160 + buffer.SeriesBytes

// chunkMetaBytes is what one chunk reference of a selected series costs.
const chunkMetaBytes = int64(unsafe.Sizeof(segments.ChunkMeta{}))

var _ storage.Queryable = (*Queryable)(nil)

// NewQueryable returns a Queryable reading from head and, when set is not
// nil, from its segments.
func NewQueryable(head *buffer.Head, set *segments.Set) *Queryable {
	return &Queryable{head: head, set: set}
}

// Querier returns a querier for data in [mint, maxt] (milliseconds,
// inclusive). Segments it reads stay on disk, and data a flush moves from
// the head into segments stays in the head, until the querier is closed:
// every sample acknowledged before Querier is called is read exactly once,
// whether a flush or a compaction runs meanwhile (see buffer.Head.StartRead).
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{qb: q, head: q.head, set: q.set, mint: mint, maxt: maxt, releases: []func(){q.head.StartRead()}}, nil
}

// minTime returns the retention bound of a resolution (0: raw).
func (q *Queryable) minTime(res int64) int64 {
	if q.MinTime == nil {
		return math.MinInt64
	}
	return q.MinTime(res)
}

func (q *Queryable) rawMinTime() int64 { return q.minTime(0) }

// coverage implements rollupSource: the newest run of rollup windows of res
// without gaps.
func (q *Queryable) coverage(res int64) (int64, int64, bool) {
	if q.set == nil {
		return 0, 0, false
	}
	var wins [][2]int64
	for _, m := range q.segmentMetas() {
		if m.Resolution == res {
			wins = append(wins, [2]int64{m.MinTime, m.MaxTime})
		}
	}
	if len(wins) == 0 {
		return 0, 0, false
	}
	slices.SortFunc(wins, func(a, b [2]int64) int { return cmpInt64(a[0], b[0]) })
	from, to := wins[len(wins)-1][0], wins[len(wins)-1][1]
	for i := len(wins) - 2; i >= 0 && wins[i][1]+1 >= from; i-- {
		from = min(from, wins[i][0])
	}
	return max(from, q.minTime(res)), to, true
}

// segmentMetas returns the metas of the local segments and of those in
// object storage (some twice). The slice may be shared: it must not be
// modified.
func (q *Queryable) segmentMetas() []segments.Meta {
	local := q.set.Metas()
	if q.Remote == nil {
		return local
	}
	return append(slices.Clip(local), q.Remote.Metas()...)
}

type querier struct {
	qb         *Queryable
	head       *buffer.Head
	set        *segments.Set
	mint, maxt int64
	selected   atomic.Int64  // bytes this querier charged to budget
	budget     *selectBudget // set by the first Select (guarded by mtx until then)
	// overBudget is set once a Select went past MaxSelectBytes: every
	// series set of the querier then fails, so that the engine, which
	// selects for all selectors before it evaluates any, stops at the
	// first one rather than evaluating those that fit.
	overBudget atomic.Pointer[error]
	mtx        sync.Mutex
	releases   []func()            // guarded by mtx
	seen       map[uint64]struct{} // hashes of the series selected, for MaxSelectSeries; guarded by mtx
}

// selectBudget is what the queriers of one query hold, against
// Queryable.MaxSelectBytes.
type selectBudget struct{ used atomic.Int64 }

type selectBudgetKey struct{}

// WithSelectBudget returns a context whose queriers (the engine
// evaluations of one request, such as the frontend's extents evaluated in
// parallel) share one budget of Queryable.MaxSelectBytes: together they
// hold at most that much at a time. What a querier charged is given back
// when it closes. Without it, each querier has a budget of its own.
func WithSelectBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, selectBudgetKey{}, &selectBudget{})
}

// budgetFor returns the budget the querier charges: the context's, or its
// own.
func (q *querier) budgetFor(ctx context.Context) *selectBudget {
	q.mtx.Lock()
	defer q.mtx.Unlock()
	if q.budget == nil {
		b, ok := ctx.Value(selectBudgetKey{}).(*selectBudget)
		if !ok {
			b = &selectBudget{}
		}
		q.budget = b
	}
	return q.budget
}

// charge counts n more bytes against the select budget and returns an
// error once the query holds more than it, naming the limit.
//
// What failed to fit is not held, so it is not counted: other queriers of
// the budget go on.
func (q *querier) charge(b *selectBudget, n int64) error {
	if n == 0 {
		return nil
	}
	q.selected.Add(n)
	used := b.used.Add(n)
	if limit := q.qb.MaxSelectBytes; limit > 0 && used > limit {
		q.selected.Add(-n)
		b.used.Add(-n)
		err := fmt.Errorf("%w: its selectors would hold more than the limit of %d bytes of series (query.max_select_bytes); select fewer series, or a shorter time range, in fewer selectors", ErrSelectLimit, limit)
		q.overBudget.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// countSeries counts a series selected against Queryable.MaxSelectSeries
// (by the hash of its labels: a series two selectors select counts once)
// and returns an error naming the limit once the querier selected more.
func (q *querier) countSeries(lset labels.Labels) error {
	limit := q.qb.MaxSelectSeries
	if limit <= 0 {
		return nil
	}
	q.mtx.Lock()
	if q.seen == nil {
		q.seen = map[uint64]struct{}{}
	}
	q.seen[lset.Hash()] = struct{}{}
	n := len(q.seen)
	q.mtx.Unlock()
	if n <= limit {
		return nil
	}
	err := fmt.Errorf("%w: its selectors select more than the limit of %d series (query.max_series); narrow the selectors or the time range", ErrTooManySeries, limit)
	q.overBudget.CompareAndSwap(nil, &err)
	return err
}

// segmentsFor acquires the segments overlapping [mint, maxt] until Close,
// with their tombstones as they were at that moment (a compaction that
// replaces a segment drops its tombstones from the set), and, with a
// Remote tier, those only in object storage that want accepts (nil: all),
// all in write order.
func (q *querier) segmentsFor(ctx context.Context, mint, maxt int64, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, error) {
	segs, tombs := q.localSegments(mint, maxt)
	return q.addRemote(ctx, mint, maxt, segs, tombs, want)
}

// localSegments acquires the local segments overlapping [mint, maxt]
// until Close, with their tombstones, in write order.
func (q *querier) localSegments(mint, maxt int64) ([]*segments.Segment, segments.TombstoneView) {
	if q.set == nil {
		return nil, nil
	}
	segs, tombs, release := q.set.AcquireWithTombstones(mint, maxt)
	q.mtx.Lock()
	q.releases = append(q.releases, release)
	q.mtx.Unlock()
	return segs, tombs
}

// addRemote adds to segs, the local segments acquired for [mint, maxt],
// those of the Remote tier that only object storage holds and want
// accepts (nil: all), held until Close, with their tombstones.
func (q *querier) addRemote(ctx context.Context, mint, maxt int64, segs []*segments.Segment, tombs segments.TombstoneView, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, error) {
	if q.set == nil || q.qb.Remote == nil {
		return segs, tombs, nil
	}
	// After the local set: a segment deleted locally meanwhile is then
	// in the bucket, and one read locally is left out there.
	local := make([]segments.Meta, len(segs))
	for i, s := range segs {
		local[i] = s.Meta()
	}
	remote, remoteTombs, releaseRemote, err := q.qb.Remote.Acquire(ctx, mint, maxt, local, want)
	if err != nil {
		return nil, nil, err
	}
	q.mtx.Lock()
	q.releases = append(q.releases, releaseRemote)
	q.mtx.Unlock()
	if len(remote) == 0 {
		return segs, tombs, nil
	}
	// A new slice: segs shares its array with the set's release
	// function, which must go on releasing exactly the local segments
	// (sorting remote ones into that array made it release a bucket
	// segment it never acquired and leak a local one).
	segs = slices.Concat(segs, remote)
	if len(remoteTombs) > 0 {
		merged := make(segments.TombstoneView, len(tombs)+len(remoteTombs))
		maps.Copy(merged, tombs)
		maps.Copy(merged, remoteTombs) // other IDs than the local segments'
		tombs = merged
	}
	slices.SortFunc(segs, func(a, b *segments.Segment) int { return segments.WriteOrder(a.Meta(), b.Meta()) })
	return segs, tombs, nil
}

// Select returns the matching series, narrowed to the hints' time range when
// they give one.
func (q *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if p := q.overBudget.Load(); p != nil {
		return storage.ErrSeriesSet(*p)
	}
	budget := q.budgetFor(ctx)
	limit := 0 // with a limit, each source gives at most its limit smallest series
	if hints != nil && hints.Limit > 0 {
		limit = hints.Limit
	}
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	agg, res, ms := rollupMatchers(ms)
	var (
		win       rollupWindow
		coverFrom int64 // where the rollups' coverage starts
		// continues says that a counter read from rollups goes on past
		// them, over raw data, inside the range.
		continues bool
	)
	if agg != "" {
		from, to, ok := q.qb.coverage(res)
		coverFrom = from
		if !ok {
			from, to = math.MaxInt64, math.MinInt64 // nothing rolled up (any more): raw only
		}
		win = rollupWindow{agg: agg, res: res, from: max(from, mint), to: min(to, maxt)}
		if continues = agg == aggCounter && ok && maxt > to; continues {
			// Past the rollups a counter continues the last rolled-up
			// window's counter (as the downsampler will when it rolls the
			// next window up) over raw data read from that window's end,
			// wherever the range starts: its level, which rate reads to
			// extrapolate no further back than the counter would reach
			// zero, must not depend on the range (the frontend answers a
			// range from pieces evaluated apart).
			win.from = min(win.from, windowOf(to)+1)
		}
	}
	rolls := agg != "" && win.from <= win.to
	rawMin := q.qb.rawMinTime()
	rawMint := max(mint, rawMin)
	if rolls && win.from <= mint {
		// Rollups answer up to win.to: raw data is needed after it only;
		// a counter continues from each series' last rolled-up bucket,
		// which may be anywhere in the last window, and needs the raw
		// value there.
		if continues {
			rawMint = max(rawMin, windowOf(win.to)+1)
		} else {
			rawMint = max(rawMint, win.to-res+1)
		}
	}
	if mint > maxt {
		return storage.EmptySeriesSet()
	}
	sc := &selectCtx{ctx: ctx, q: q, budget: budget, labelsOnly: hints != nil && hints.Func == "series", mint: rawMint, maxt: maxt, win: win, rollFrom: win.from}
	lo, hi := mint, maxt
	judgeFrom := win.from // the windows whose lineage is judged start here
	if rolls {
		if agg == aggCounter {
			// A counter continues across windows: a window rolled up again
			// changes the level of every later one, the range's too,
			// however long before it starts. Every window whose raw data
			// is still there (that could be rolled up again) is judged.
			judgeFrom = min(win.from, max(coverFrom, rawMin))
		}
		// The whole of the windows judged, and the one before them
		// (whose counters a window rolled up again continues).
		lo = min(lo, windowOf(judgeFrom)+1-downsample.Window)
		hi = max(hi, windowOf(win.to)+downsample.Window)
	}
	segs, tombsByID := q.localSegments(lo, hi)
	if rolls {
		st, err := q.staleness(ctx, win, judgeFrom, segs, tombsByID, ms)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		sc.stale = st
		if st != nil && len(st.possible) > 0 && agg == aggCounter {
			sc.rollFrom = min(win.from, st.possible[0]+1-downsample.Window)
		}
	}
	if rawMint <= maxt {
		sc.ranges = append(sc.ranges, [2]int64{rawMint, maxt})
	}
	for _, r := range sc.stale.rawRanges() {
		if r = [2]int64{max(r[0], rawMin), min(r[1], maxt)}; r[0] <= r[1] {
			sc.ranges = append(sc.ranges, r)
		}
	}
	isRollup := func(m segments.Meta) bool {
		return rolls && m.Resolution == res && m.MinTime <= win.to && m.MaxTime >= sc.rollFrom
	}
	isRaw := func(m segments.Meta) bool {
		return m.Resolution == 0 && overlapsRanges(m.MinTime, m.MaxTime, sc.ranges)
	}
	segs, tombsByID, err := q.addRemote(ctx, lo, hi, segs, tombsByID, func(m segments.Meta) bool { return isRaw(m) || isRollup(m) })
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	var cursors []cursor
	for _, seg := range segs {
		m := seg.Meta()
		roll := isRollup(m)
		if !roll && !isRaw(m) {
			continue
		}
		cursors = append(cursors, &segCursor{sc: sc, seg: seg, ms: ms, rollup: roll, tombs: tombsByID[m.ID],
			staleable: roll && sc.stale.mayBeStale(m.MinTime-1)})
	}
	if len(sc.ranges) > 0 {
		// The head is selected now, and charged, so that a query selecting
		// too much fails before the engine evaluates any selector; its
		// series stay references until iterated, and the head keeps what a
		// flush moves into segments until the querier closes
		// (Head.StartRead in Querier).
		hc, err := sc.selectHead(limit, ms)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		cursors = append(cursors, hc)
	}
	return &seriesSet{q: q, set: &mergeSet{sc: sc, cursors: cursors, limit: limit}, count: !sc.labelsOnly}
}

// overlapsRanges reports whether [mint, maxt] overlaps one of ranges.
func overlapsRanges(mint, maxt int64, ranges [][2]int64) bool {
	return slices.ContainsFunc(ranges, func(r [2]int64) bool { return mint <= r[1] && maxt >= r[0] })
}

// allDeleted reports whether every chunk lies inside one deleted range.
func allDeleted(metas []segments.ChunkMeta, deleted [][2]int64) bool {
	if len(deleted) == 0 {
		return false
	}
	for _, m := range metas {
		covered := false
		for _, r := range deleted {
			if m.MinTime >= r[0] && m.MaxTime <= r[1] {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// overlapping keeps the raw chunks that overlap one of ranges.
func overlapping(metas []segments.ChunkMeta, ranges [][2]int64) []segments.ChunkMeta {
	return filterMetas(metas, func(m *segments.ChunkMeta) bool {
		return m.Kind == segments.KindRaw && overlapsRanges(m.MinTime, m.MaxTime, ranges)
	})
}

// filterMetas returns the metas keep accepts: metas itself when it accepts
// all, else a new slice. It never writes to metas, which a segment's
// series cache shares (segments.Segment.SelectShared).
func filterMetas(metas []segments.ChunkMeta, keep func(*segments.ChunkMeta) bool) []segments.ChunkMeta {
	for i := range metas {
		if keep(&metas[i]) {
			continue
		}
		out := slices.Clip(metas[:i])
		for j := i + 1; j < len(metas); j++ {
			if keep(&metas[j]) {
				out = append(out, metas[j])
			}
		}
		return out
	}
	return metas
}

// chunksIn returns the chunks of metas that overlap [mint, maxt]: metas
// itself when all do, else a new slice.
func chunksIn(metas []segments.ChunkMeta, mint, maxt int64) []segments.ChunkMeta {
	in := func(m segments.ChunkMeta) bool { return m.MinTime <= maxt && m.MaxTime >= mint }
	if !slices.ContainsFunc(metas, func(m segments.ChunkMeta) bool { return !in(m) }) {
		return metas
	}
	var out []segments.ChunkMeta
	for _, m := range metas {
		if in(m) {
			out = append(out, m)
		}
	}
	return out
}

func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	// With a limit every source gives only its smallest values: the
	// smallest of the union are among them.
	limit := 0
	if hints != nil {
		limit = hints.Limit
	}
	vals, err := q.head.LabelValuesLimit(ctx, name, limit, q.mint, q.maxt, ms...)
	if err != nil {
		return nil, nil, err
	}
	segs, _, err := q.segmentsFor(ctx, q.mint, q.maxt, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, seg := range segs {
		sv, err := seg.LabelValuesLimit(name, limit, ms...)
		if err != nil {
			return nil, nil, err
		}
		vals = append(vals, sv...)
	}
	return limitStrings(sortUnique(vals), hints), nil, nil
}

func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, err := q.head.LabelNames(ctx, q.mint, q.maxt, ms...)
	if err != nil {
		return nil, nil, err
	}
	segs, _, err := q.segmentsFor(ctx, q.mint, q.maxt, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, seg := range segs {
		sn, err := seg.LabelNames(ms...)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, sn...)
	}
	return limitStrings(sortUnique(names), hints), nil, nil
}

// Close releases the segments the querier read and ends its read of the
// head.
func (q *querier) Close() error {
	q.mtx.Lock()
	defer q.mtx.Unlock()
	for _, r := range q.releases {
		r()
	}
	q.releases = nil
	if q.budget != nil {
		q.budget.used.Add(-q.selected.Swap(0))
	}
	return nil
}

func sortUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func limitStrings(s []string, hints *storage.LabelHints) []string {
	if hints != nil && hints.Limit > 0 && len(s) > hints.Limit {
		return s[:hints.Limit]
	}
	return s
}

// segSource is a series' chunks in one segment.
type segSource struct {
	seg     *segments.Segment
	metas   []segments.ChunkMeta
	deleted [][2]int64 // ranges hidden by tombstones
}

// mergedSeries is one series' data across segments (in ID order) and the
// head, and, for a selector that reads rollups, across rollup segments.
type mergedSeries struct {
	lset       labels.Labels
	segs       []segSource   // raw
	head       buffer.Series // when hasHead
	hasHead    bool
	mint, maxt int64 // of the raw data
	rollups    []segSource
	win        rollupWindow
	stale      *staleness    // where its rollups may be out of date; nil: nowhere
	set        *segments.Set // quarantines a segment a read finds damaged
	labelsOnly bool          // selected for its labels: no data
}

// chunks returns an iterator over the chunks of kind in src. A damaged
// chunk takes its segment out of the set (later queries do not see it)
// and fails the read with an error naming the segment.
func (s *mergedSeries) chunks(src segSource, kind segments.ChunkKind) (chunkenc.Iterator, error) {
	it, err := src.seg.KindIterator(src.metas, kind)
	var ce *segments.CorruptionError
	if errors.As(err, &ce) && s.set != nil {
		s.set.Quarantine(src.seg.Meta().ID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", src.seg.Meta().ID, err)
	}
	return it, nil
}

func (s *mergedSeries) Labels() labels.Labels { return s.lset }

func (s *mergedSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if s.labelsOnly {
		return errIterator{errLabelsOnly}
	}
	if s.win.agg != "" {
		return s.rollupIterator()
	}
	return s.rawIterator(s.mint, s.maxt)
}

// rawIterator merges the series' raw data in [mint, maxt], newest write
// winning.
func (s *mergedSeries) rawIterator(mint, maxt int64) chunkenc.Iterator {
	its := make([]chunkenc.Iterator, 0, len(s.segs)+1)
	for _, src := range s.segs {
		if src.metas = chunksIn(src.metas, mint, maxt); len(src.metas) == 0 {
			continue
		}
		it, err := s.chunks(src, segments.KindRaw)
		if err != nil {
			return errIterator{err}
		}
		if it != nil {
			its = append(its, segments.NewDeletedIterator(it, src.deleted))
		}
	}
	if s.hasHead {
		its = append(its, s.head.Iterator())
	}
	return segments.NewBoundedIterator(segments.NewMergeIterator(its), mint, maxt)
}

// seriesSet is a querier's selection: it fails as soon as any selection
// of the querier went over the select budget, and counts the distinct
// series the querier selected against Queryable.MaxSelectSeries.
type seriesSet struct {
	set   storage.SeriesSet
	q     *querier
	count bool // false for labels-only listings, which hold nothing
	err   error
}

func (s *seriesSet) Next() bool {
	if s.err != nil {
		return false
	}
	if p := s.q.overBudget.Load(); p != nil {
		s.err = *p
		return false
	}
	if !s.set.Next() {
		return false
	}
	if s.count {
		s.err = s.q.countSeries(s.set.At().Labels())
	}
	return s.err == nil
}

func (s *seriesSet) At() storage.Series { return s.set.At() }

func (s *seriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.set.Err()
}

func (s *seriesSet) Warnings() annotations.Annotations { return s.set.Warnings() }

// errIterator is an iterator that failed to open.
type errIterator struct{ err error }

func (e errIterator) Next() chunkenc.ValueType { return chunkenc.ValNone }
func (e errIterator) Seek(int64) chunkenc.ValueType {
	return chunkenc.ValNone
}
func (e errIterator) At() (int64, float64) { return 0, 0 }
func (e errIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	return 0, nil
}
func (e errIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return 0, nil
}
func (e errIterator) AtT() int64  { return 0 }
func (e errIterator) AtST() int64 { return 0 }
func (e errIterator) Err() error  { return e.err }
