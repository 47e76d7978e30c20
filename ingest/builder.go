package ingest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// builder accumulates the series and samples of one request and produces
// the Batch. Decoders describe each label set with resetLabels, addLabel
// (or setName) and finishLabels, resolve it to a series with seriesRef, and
// append samples with add. Label strings handed to the builder may alias
// request memory that is reused afterwards: the builder copies what it
// keeps.
//
// Series are deduplicated by their labels' hash (checked for equality), so
// a label set is validated once per request, when it is first seen, and
// samples are appended with no allocation: they go into one flat slice
// with a parallel slice of owners, and batch() carves the per-series
// slices out of a single exact-size array at the end. With a Known (the
// head), each label set is copied into an arena shared by many requests
// (labelArena) instead of an allocation of its own, and a series the store
// holds already carries the store's handle of it: for requests of series
// seen before, such as Prometheus sends, no allocation per series and no
// second lookup in the store.
type builder struct {
	lim Limits

	// The label set being described: the metric name, kept apart, and the
	// other labels in pending (sorted by finishLabels).
	name    string
	hasName bool
	dupName bool
	pending []labels.Label
	lsASCII bool // pending's names and values are all ASCII, set by finishLabels
	lsValid bool // pending passed validation (line protocol reuses it per field)
	// scratch is the label set being resolved, __name__ included, in a
	// buffer of sb reused for each series (so it aliases nothing of the
	// request's once built).
	scratch labels.Labels

	known Known
	epoch uint64       // known.KnownEpoch() before the first lookup
	cache *SeriesCache // remote write 1.0's series by their label bytes, or nil
	// lookedUp is set by seriesRef when it asked known for the series it
	// returned and known had it.
	lookedUp bool
	ahead    []writeField // decodeWriteRequestCached's
	// cacheLookups and cacheHits count the request's lookups in cache.
	cacheLookups, cacheHits int
	sink                    byte // what decodeAhead loaded, kept so that it is loaded
	arena                   labelArena
	index                   seriesIndex // the series of the request by labels hash
	series                  []seriesEntry
	samples                 []Sample
	owners                  []int32 // owners[i] is the index of the series samples[i] belongs to
	grouped                 bool    // samples are already laid out series by series, in order

	// Native histograms, kept apart from the floats: hists[i] belongs to
	// series histOwners[i]. They are rare next to floats and allocate
	// anyway, so batch() always scatters them.
	hists      []HistogramSample
	histOwners []int32
	histCost   int // HistogramCost summed over hists

	// Start timestamps of remote write 2.0, parallel to samples and
	// hists; nil until the request gives one (then filled with 0 for the
	// samples before it).
	sts, hsts []int64

	// Exemplars: exs[i] belongs to series exOwners[i].
	exs      []Exemplar
	exOwners []int32
	exsb     labels.ScratchBuilder
	// droppedEx counts the exemplars left out as invalid (remote write
	// 1.0 drops them and keeps the rest of the request).
	droppedEx int

	// Metadata, one entry per family (metaIdx: family → index).
	meta    []FamilyMetadata
	metaIdx map[string]int

	starts []int // batch()'s scratch

	// Remote write 2.0 scratch: the symbols table (aliasing the request)
	// and label references.
	syms         []string
	refs, exRefs []uint32

	sb labels.ScratchBuilder
}

type seriesEntry struct {
	lset   labels.Labels
	hash   uint64 // lset.Hash()
	handle any    // from known, or nil
	name   string // lset's __name__ (Series.Name)
	n      int    // samples so far
	nh     int    // histograms so far
	nx     int    // exemplars so far
}

var builderPool = sync.Pool{New: func() any {
	b := &builder{sb: labels.NewScratchBuilder(16), exsb: labels.NewScratchBuilder(4)}
	// Strings added to sb may alias request buffers; make sure every
	// Labels implementation copies them.
	b.sb.SetUnsafeAdd(true)
	b.exsb.SetUnsafeAdd(true)
	return b
}}

// getBuilder returns an empty builder for a request under lim.
func getBuilder(lim Limits) *builder {
	b := builderPool.Get().(*builder)
	b.lim = lim
	b.grouped = true
	return b
}

// Known finds the series a store holds already, so that a decoder can
// hand out the store's handle of the series and the store need not look
// it up again (buffer.Head implements it). A decoder given a Known keeps
// label sets in an arena (labelArena) rather than one allocation each. It
// must be safe for concurrent use.
type Known interface {
	// KnownEpoch returns the epoch handles are given out in now. A
	// decoder asks it before its first KnownSeries and puts it in the
	// Batch (Batch.KnownEpoch): the store uses the handles of a batch only
	// while the epoch is the same.
	KnownEpoch() uint64
	// KnownSeries returns the store's handle of the stored series equal
	// to lset, whose Hash() is hash, and true; or false when there is
	// none. lset may alias memory that is reused after the call: it must
	// not be kept.
	KnownSeries(hash uint64, lset labels.Labels) (handle any, ok bool)
}

// maxPooled bounds the scratch a pooled builder keeps; a builder that served
// a bigger request is dropped rather than kept alive.
const maxPooled = 1 << 16

// release returns b to the pool. Nothing b produced may alias its buffers.
func (b *builder) release() {
	if len(b.index.slots) > 4*maxPooled || cap(b.samples) > 4*maxPooled || cap(b.pending) > 1024 || cap(b.syms) > 4*maxPooled {
		return
	}
	b.index.reset()
	b.known, b.epoch, b.cache = nil, 0, nil
	b.cacheLookups, b.cacheHits = 0, 0
	b.arena.reset()
	clear(b.series) // drop references to labels
	b.series = b.series[:0]
	b.samples = b.samples[:0]
	b.owners = b.owners[:0]
	clear(b.hists) // drop references to histograms
	b.hists = b.hists[:0]
	b.histOwners = b.histOwners[:0]
	b.histCost = 0
	b.sts, b.hsts = nil, nil
	clear(b.exs)
	b.exs = b.exs[:0]
	b.exOwners = b.exOwners[:0]
	b.droppedEx = 0
	clear(b.meta)
	b.meta = b.meta[:0]
	clear(b.metaIdx)
	clear(b.syms) // do not keep request memory alive from the pool
	b.syms = b.syms[:0]
	b.resetLabels()
	builderPool.Put(b)
}

// resetLabels starts describing a new label set.
func (b *builder) resetLabels() {
	b.name, b.hasName, b.dupName, b.lsValid = "", false, false, false
	clear(b.pending) // do not keep request memory alive from the pool
	b.pending = b.pending[:0]
}

// addLabel adds one label to the set being described. A label with an empty
// value is dropped: in Prometheus an empty value means the label is absent.
func (b *builder) addLabel(name, value string) {
	if value == "" {
		return
	}
	if name == labels.MetricName {
		b.dupName = b.hasName
		b.setName(value)
		return
	}
	b.pending = append(b.pending, labels.Label{Name: name, Value: value})
}

// setName sets the metric name of the set being described. It may be called
// again after finishLabels to describe another series with the same labels.
func (b *builder) setName(name string) {
	b.name, b.hasName = name, name != ""
}

// finishLabels sorts the labels added so far and encodes them for lookup.
func (b *builder) finishLabels() {
	p := b.pending
	if len(p) <= 16 {
		// Insertion sort: label sets are short and usually arrive sorted.
		for i := 1; i < len(p); i++ {
			for j := i; j > 0 && p[j].Name < p[j-1].Name; j-- {
				p[j], p[j-1] = p[j-1], p[j]
			}
		}
	} else {
		// A hostile request may send thousands of labels: stay n log n.
		slices.SortFunc(p, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	ascii := true
	for _, l := range p {
		ascii = ascii && isASCII(l.Name) && isASCII(l.Value)
	}
	b.lsASCII = ascii
	b.lsValid = false
}

// isASCII reports whether s holds no byte above 0x7f, 8 bytes at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// seriesRef returns the index of the series for the current name and labels
// (as of the last finishLabels), creating and validating it on first sight.
// Errors are *Error values without a line.
func (b *builder) seriesRef() (int32, error) {
	// With a Known the label set is written into the arena at once (it
	// stays there if it is a new series of the request, else it is taken
	// back); otherwise into sb's buffer, reused series after series.
	inArena := b.known != nil && arenaLabels
	tentative := 0 // bytes of the arena to take back if scratch is not kept
	b.lookedUp = false
	if inArena {
		b.scratch, tentative = b.arena.appendSet(b.name, b.pending)
	} else {
		// pending is sorted: add __name__ at its place and skip sb.Sort.
		b.sb.Reset()
		named := false
		for _, l := range b.pending {
			if !named && l.Name > labels.MetricName {
				b.sb.Add(labels.MetricName, b.name)
				named = true
			}
			b.sb.Add(l.Name, l.Value)
		}
		if !named {
			b.sb.Add(labels.MetricName, b.name)
		}
		b.sb.Overwrite(&b.scratch)
	}
	hash := b.scratch.Hash()
	if !b.dupName {
		if ref := b.findSeries(hash, b.scratch); ref >= 0 {
			b.arena.takeBack(tentative)
			return ref, nil
		}
	}
	if err := b.validatePending(); err != nil {
		b.arena.takeBack(tentative)
		return 0, withSeries(err, formatSeries(b.name, b.pending))
	}
	if exceeds(len(b.series)+1, b.lim.MaxSeriesPerRequest) {
		b.arena.takeBack(tentative)
		return 0, newError(ErrTooManySeries, fmt.Sprintf("too many series: more than %d in one request", b.lim.MaxSeriesPerRequest))
	}
	var (
		lset   labels.Labels
		handle any
	)
	if b.known != nil {
		handle, b.lookedUp = b.known.KnownSeries(hash, b.scratch)
	}
	if inArena {
		lset = b.scratch // kept where appendSet wrote it
	} else {
		lset = b.sb.Labels() // a copy: sb's strings may alias the request
	}
	ref := int32(len(b.series))
	// The name is read while the label set is in the cache, just written.
	b.series = append(b.series, seriesEntry{lset: lset, hash: hash, handle: handle, name: lset.Get(labels.MetricName)})
	b.indexSeries(ref)
	return ref, nil
}

// cachedRef is seriesRef for the series of a SeriesCache entry, whose
// label bytes the request carries: it was validated under b's limits when
// it was cached, and known's handle of it is asked again only when the
// entry's is of another epoch than b's.
func (b *builder) cachedRef(e *cachedSeries) (int32, error) {
	if ref := b.findSeries(e.hash, e.lset); ref >= 0 {
		return ref, nil
	}
	if exceeds(len(b.series)+1, b.lim.MaxSeriesPerRequest) {
		return 0, newError(ErrTooManySeries, fmt.Sprintf("too many series: more than %d in one request", b.lim.MaxSeriesPerRequest))
	}
	handle := e.handle
	if e.epoch != b.epoch {
		// Series were removed since: e's handle may name one of them.
		var ok bool
		if handle, ok = b.known.KnownSeries(e.hash, e.lset); ok {
			b.cache.renew(e, handle, b.epoch)
		}
	}
	ref := int32(len(b.series))
	b.series = append(b.series, seriesEntry{lset: e.lset, hash: e.hash, handle: handle, name: e.name})
	b.indexSeries(ref)
	return ref, nil
}

// seriesIndex finds the series of a request by their labels hash: a
// table of slots with linear probing, at most half full, which for
// requests of thousands of series costs less than a Go map (8-byte
// slots, no hashing of the hash: a request of 2,000 series takes
// 32 KiB). Every series of the builder's series is in it.
type seriesIndex struct {
	slots []indexSlot // a power of two of them, or none
	n     int         // slots taken
}

// indexSlot is a slot of seriesIndex: a series and the top half of its
// hash (under indexMask), or nothing when ref is 0.
type indexSlot struct {
	tag uint32
	ref int32 // the series + 1
}

func (x *seriesIndex) reset() {
	if x.n > 0 {
		clear(x.slots)
		x.n = 0
	}
}

// findSeries returns the series of the request whose labels hash is hash
// and whose labels equal lset, or -1.
func (b *builder) findSeries(hash uint64, lset labels.Labels) int32 {
	x := &b.index
	if x.n == 0 {
		return -1
	}
	key := hash & indexMask
	tag, mask := uint32(key>>32), uint64(len(x.slots)-1)
	for i := key & mask; ; i = (i + 1) & mask {
		sl := x.slots[i]
		if sl.ref == 0 {
			return -1
		}
		if sl.tag == tag {
			if e := &b.series[sl.ref-1]; e.hash&indexMask == key && labels.Equal(e.lset, lset) {
				return sl.ref - 1
			}
		}
	}
}

// indexSeries adds series ref, the last of b.series, to the index.
func (b *builder) indexSeries(ref int32) {
	x := &b.index
	if 2*(x.n+1) > len(x.slots) {
		// Twice the slots, and every series again.
		x.slots = make([]indexSlot, max(64, 2*len(x.slots)))
		x.n = 0
		for r := range ref {
			x.put(b.series[r].hash, r)
		}
	}
	x.put(b.series[ref].hash, ref)
}

func (x *seriesIndex) put(hash uint64, ref int32) {
	key := hash & indexMask
	mask := uint64(len(x.slots) - 1)
	i := key & mask
	for x.slots[i].ref != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = indexSlot{tag: uint32(key >> 32), ref: ref + 1}
	x.n++
}

// indexMask is applied to a label hash before it indexes the series of a
// request. Tests set it to 0 so that every series collides with every
// other; the labels comparison must keep them apart.
var indexMask = ^uint64(0)

// validatePending applies the validation rules to the current label set.
func (b *builder) validatePending() error {
	if b.dupName {
		return newError(ErrDuplicateLabel, fmt.Sprintf("duplicate label name %q", labels.MetricName))
	}
	if !b.hasName {
		return newError(ErrInvalidMetricName, "missing metric name")
	}
	if err := checkMetricName(b.name, b.lim); err != nil {
		return err
	}
	if b.lsValid {
		return nil
	}
	if n := len(b.pending) + 1; exceeds(n, b.lim.MaxLabelsPerSeries) {
		return newError(ErrTooManyLabels, fmt.Sprintf("too many labels: %d, limit is %d", n, b.lim.MaxLabelsPerSeries))
	}
	for i, l := range b.pending {
		if i > 0 && l.Name == b.pending[i-1].Name {
			return newError(ErrDuplicateLabel, fmt.Sprintf("duplicate label name %q", truncate(l.Name)))
		}
		if b.lsASCII && asciiLabelOK(l.Name, l.Value, b.lim) {
			continue
		}
		if err := checkLabel(l.Name, l.Value, b.lim); err != nil {
			return err
		}
	}
	b.lsValid = true
	return nil
}

// asciiLabelOK reports, for a label whose name and value are ASCII, that
// checkLabel finds nothing wrong with it, without checkLabel's UTF-8
// checks (ASCII is valid UTF-8). false means "ask checkLabel".
func asciiLabelOK(name, value string, lim Limits) bool {
	if lim.LegacyNames {
		return false
	}
	return name != "" && (len(name) < 2 || name[0] != '_' || name[1] != '_') &&
		!exceeds(len(name), lim.MaxLabelNameLength) && !exceeds(len(value), lim.MaxLabelValueLength)
}

// add appends one sample to series ref.
func (b *builder) add(ref int32, t int64, v float64) error {
	if exceeds(len(b.samples)+b.histCost+1, b.lim.MaxSamplesPerRequest) {
		return errTooManySamples(b.lim)
	}
	if b.grouped && len(b.owners) > 0 {
		// While owners never decrease, samples are already laid out
		// series by series and batch() can copy them as they are.
		b.grouped = ref >= b.owners[len(b.owners)-1]
	}
	b.samples = append(b.samples, Sample{T: t, V: v})
	b.owners = append(b.owners, ref)
	if b.sts != nil {
		b.sts = append(b.sts, 0)
	}
	b.series[ref].n++
	return nil
}

// addWithStart appends one sample with its start (created) timestamp st
// (0: none) to series ref.
func (b *builder) addWithStart(ref int32, t int64, v float64, st int64) error {
	if err := b.add(ref, t, v); err != nil {
		return err
	}
	if st != 0 {
		if b.sts == nil {
			b.sts = make([]int64, len(b.samples))
		}
		b.sts[len(b.sts)-1] = st
	}
	return nil
}

// setHistogramStart sets the start timestamp of the histogram added last.
func (b *builder) setHistogramStart(st int64) {
	if st == 0 {
		return
	}
	if b.hsts == nil {
		b.hsts = make([]int64, len(b.hists))
	}
	b.hsts[len(b.hsts)-1] = st
}

// exemplarMaxLabelRunes is Prometheus' limit on an exemplar's labels: the
// names and values together, in runes (exemplar.ExemplarMaxLabelSetLength).
const exemplarMaxLabelRunes = 128

// addExemplar appends one exemplar to series ref, with the labels added to
// b.exsb since its last Reset. Its labels must be valid label names with
// UTF-8 values, at most 128 runes together, as Prometheus requires; an
// invalid exemplar is an ErrInvalidExemplar naming the series. Exemplars
// count against MaxSamplesPerRequest on their own.
func (b *builder) addExemplar(ref int32, t int64, v float64) error {
	if exceeds(len(b.exs)+1, b.lim.MaxSamplesPerRequest) {
		return newError(ErrTooManySamples, fmt.Sprintf("too many exemplars: more than %d in one request", b.lim.MaxSamplesPerRequest))
	}
	b.exsb.Sort()
	lset := b.exsb.Labels()
	if err := checkExemplarLabels(lset, b.lim); err != nil {
		return withSeries(err, b.series[ref].lset.String())
	}
	b.exs = append(b.exs, Exemplar{Labels: lset, T: t, V: v})
	b.exOwners = append(b.exOwners, ref)
	b.series[ref].nx++
	return nil
}

// checkExemplarLabels applies Prometheus' rules to an exemplar's labels.
func checkExemplarLabels(lset labels.Labels, lim Limits) error {
	var (
		err   error
		runes int
		prev  string
	)
	lset.Range(func(l labels.Label) {
		if err != nil {
			return
		}
		switch {
		case l.Name == prev:
			err = newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: duplicate label name %q", truncate(l.Name)))
		case !validLabelName(l.Name, lim):
			err = newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: invalid label name %q", truncate(l.Name)))
		case !utf8.ValidString(l.Value):
			err = newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: label %q has an invalid UTF-8 value", truncate(l.Name)))
		}
		prev = l.Name
		runes += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
	})
	if err == nil && runes > exemplarMaxLabelRunes {
		err = newError(ErrInvalidExemplar, fmt.Sprintf("invalid exemplar: labels of %d runes, the limit is %d", runes, exemplarMaxLabelRunes))
	}
	return err
}

// addMetadata records the metadata of a family, replacing what the request
// gave before for it. Empty metadata is ignored. The strings may alias
// request memory: they are copied when kept.
func (b *builder) addMetadata(family string, md Metadata) {
	if family == "" || md.IsEmpty() {
		return
	}
	if i, ok := b.metaIdx[family]; ok {
		if b.meta[i].Metadata != md {
			b.meta[i].Metadata = Metadata{Type: md.Type, Unit: strings.Clone(md.Unit), Help: strings.Clone(md.Help)}
		}
		return
	}
	if b.metaIdx == nil {
		b.metaIdx = map[string]int{}
	}
	family = strings.Clone(family)
	b.metaIdx[family] = len(b.meta)
	b.meta = append(b.meta, FamilyMetadata{Family: family, Metadata: Metadata{Type: md.Type, Unit: strings.Clone(md.Unit), Help: strings.Clone(md.Help)}})
}

// addHistogram appends one native histogram to series ref. Exactly one of
// h and fh is set; the builder takes ownership of it. Schemas finer than
// 8 (up to 52, reserved by Prometheus) are reduced to 8, as Prometheus'
// remote write receiver does; a histogram that fails Prometheus'
// validation is an ErrInvalidHistogram.
// It counts against MaxSamplesPerRequest by its size (HistogramCost).
func (b *builder) addHistogram(ref int32, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) error {
	if exceeds(len(b.samples)+b.histCost+HistogramCost(h, fh), b.lim.MaxSamplesPerRequest) {
		return errTooManySamples(b.lim)
	}
	var err error
	if h != nil {
		if histogram.IsExponentialSchemaReserved(h.Schema) && h.Schema > histogram.ExponentialSchemaMax {
			err = h.ReduceResolution(histogram.ExponentialSchemaMax)
		}
		if err == nil {
			err = h.Validate()
		}
	} else {
		if histogram.IsExponentialSchemaReserved(fh.Schema) && fh.Schema > histogram.ExponentialSchemaMax {
			err = fh.ReduceResolution(histogram.ExponentialSchemaMax)
		}
		if err == nil {
			err = fh.Validate()
		}
	}
	if err != nil {
		lset := b.series[ref].lset
		var rest []labels.Label
		lset.Range(func(l labels.Label) {
			if l.Name != labels.MetricName {
				rest = append(rest, l)
			}
		})
		return withSeries(newError(ErrInvalidHistogram, fmt.Sprintf("invalid native histogram at %d: %v", t, err)), formatSeries(lset.Get(labels.MetricName), rest))
	}
	b.histCost += HistogramCost(h, fh)
	b.hists = append(b.hists, HistogramSample{T: t, H: h, FH: fh})
	b.histOwners = append(b.histOwners, ref)
	if b.hsts != nil {
		b.hsts = append(b.hsts, 0)
	}
	b.series[ref].nh++
	return nil
}

func errTooManySamples(lim Limits) *Error {
	return newError(ErrTooManySamples, fmt.Sprintf("too many samples: more than %d in one request (a native histogram counts as %d plus one per 2 buckets or spans)", lim.MaxSamplesPerRequest, HistogramCost(nil, &histogram.FloatHistogram{})))
}

// batch returns the accumulated Batch. Series that received no sample are
// left out. The Batch shares no memory with b.
func (b *builder) batch() *Batch {
	if len(b.hists) > 0 || b.sts != nil || len(b.exs) > 0 || len(b.meta) > 0 {
		return b.batchGeneral()
	}
	mem := batchMemPool.Get().(*batchMem)
	if cap(mem.series) < len(b.series) {
		mem.series = make([]Series, 0, len(b.series))
	}
	if cap(mem.arena) < len(b.samples) {
		mem.arena = make([]Sample, len(b.samples))
	}
	arena := mem.arena[:len(b.samples)]
	out := &Batch{Series: mem.series[:0], KnownEpoch: b.epoch, mem: mem}
	// The labels' chunks go back with the rest on Release.
	mem.chunks = append(mem.chunks[:0], b.arena.chunks...)
	b.arena.reset()
	if b.grouped {
		copy(arena, b.samples)
	}
	// starts[i] is where series i's samples go in arena.
	off := 0
	starts := slices.Grow(b.starts[:0], len(b.series))[:len(b.series)]
	b.starts = starts
	for i := range b.series {
		n := b.series[i].n
		starts[i] = off
		if n > 0 {
			out.Series = append(out.Series, Series{
				Labels:  b.series[i].lset,
				Hash:    b.series[i].hash,
				Handle:  b.series[i].handle,
				Name:    b.series[i].name,
				Samples: arena[off : off+n : off+n],
			})
		}
		off += n
	}
	if !b.grouped {
		for i, s := range b.samples {
			o := b.owners[i]
			arena[starts[o]] = s
			starts[o]++
		}
	}
	return out
}

// batchGeneral is batch for a request that carried more than float
// samples (histograms, start timestamps, exemplars, metadata): the same
// layout, with an arena per kind.
func (b *builder) batchGeneral() *Batch {
	arena := make([]Sample, len(b.samples))
	harena := make([]HistogramSample, len(b.hists))
	var starena, hstarena []int64
	if b.sts != nil {
		starena = make([]int64, len(b.sts))
	}
	if b.hsts != nil {
		hstarena = make([]int64, len(b.hsts))
	}
	out := &Batch{Series: make([]Series, 0, len(b.series)), KnownEpoch: b.epoch}
	starts := make([]int, len(b.series))
	hstarts := make([]int, len(b.series))
	off, hoff := 0, 0
	for i := range b.series {
		n, nh := b.series[i].n, b.series[i].nh
		starts[i], hstarts[i] = off, hoff
		if n+nh > 0 {
			s := Series{Labels: b.series[i].lset, Hash: b.series[i].hash, Handle: b.series[i].handle, Name: b.series[i].name}
			if n > 0 {
				s.Samples = arena[off : off+n : off+n]
				if starena != nil {
					s.StartTimes = starena[off : off+n : off+n]
				}
			}
			if nh > 0 {
				s.Histograms = harena[hoff : hoff+nh : hoff+nh]
				if hstarena != nil {
					s.HistogramStartTimes = hstarena[hoff : hoff+nh : hoff+nh]
				}
			}
			out.Series = append(out.Series, s)
		}
		off += n
		hoff += nh
	}
	for i, s := range b.samples {
		o := b.owners[i]
		arena[starts[o]] = s
		if starena != nil {
			starena[starts[o]] = b.sts[i]
		}
		starts[o]++
	}
	for i, h := range b.hists {
		o := b.histOwners[i]
		harena[hstarts[o]] = h
		if hstarena != nil {
			hstarena[hstarts[o]] = b.hsts[i]
		}
		hstarts[o]++
	}
	if len(b.exs) > 0 {
		xarena := make([]Exemplar, len(b.exs))
		xstarts := starts[:0] // reused: one entry per series again
		xoff := 0
		for i := range b.series {
			nx := b.series[i].nx
			xstarts = append(xstarts, xoff)
			if nx > 0 {
				out.Exemplars = append(out.Exemplars, SeriesExemplars{Labels: b.series[i].lset, Exemplars: xarena[xoff : xoff+nx : xoff+nx]})
			}
			xoff += nx
		}
		for i, x := range b.exs {
			o := b.exOwners[i]
			xarena[xstarts[o]] = x
			xstarts[o]++
		}
	}
	if len(b.meta) > 0 {
		out.Metadata = slices.Clone(b.meta)
	}
	return out
}

// batchMem is the memory of a Batch made by builder.batch, which
// Batch.Release gives back for the next request: its Series, the array
// their samples are carved from (about 150 bytes a series, zeroed on
// allocation otherwise) and, decoded with a Known, the chunks its labels
// are in (about 100 bytes a series).
type batchMem struct {
	series []Series
	arena  []Sample
	chunks []*[arenaChunk]byte // the labels' (labelArena), with a Known
}

var batchMemPool = sync.Pool{New: func() any { return new(batchMem) }}

// maxPooledBatch bounds the series of a batch whose memory is reused; a
// bigger one is left to the garbage collector.
const maxPooledBatch = 1 << 14

// yoloString returns a string sharing b's memory. The caller must not let
// it outlive b's contents; the builder copies what it keeps.
func yoloString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// labelArena holds copies of a request's label sets (stringlabels
// encodings) in pooled chunks of arenaChunk bytes, so that they cost no
// allocation each. The chunks go with the Batch (batchMem), and
// Batch.Release gives them back for later requests: the labels of a
// batch decoded with a Known are valid until its Release.
type labelArena struct {
	buf    []byte              // the chunk being filled: buf[len(buf):cap(buf)] is free
	chunks []*[arenaChunk]byte // the chunks filled, buf's included
}

// arenaChunk is the size of an arena's chunks: about 600 label sets of
// Kubernetes-like series.
const arenaChunk = 64 << 10

var arenaPool = sync.Pool{New: func() any { return new([arenaChunk]byte) }}

// appendSet writes the label set of name (the metric name) and the
// sorted labels pending into the arena, as labels.Labels encodes it
// (arenaLabels builds only), and returns it and the bytes it took there,
// which takeBack gives back while nothing else was written after them.
func (a *labelArena) appendSet(name string, pending []labels.Label) (labels.Labels, int) {
	size := encodedLen(labels.MetricName) + encodedLen(name)
	for _, l := range pending {
		size += encodedLen(l.Name) + encodedLen(l.Value)
	}
	var buf []byte
	if size > arenaChunk/4 {
		buf = make([]byte, 0, size) // alone: not worth a chunk
	} else {
		if size > cap(a.buf)-len(a.buf) {
			c := arenaPool.Get().(*[arenaChunk]byte)
			a.chunks = append(a.chunks, c)
			a.buf = c[:0:arenaChunk]
		}
		buf = a.buf[len(a.buf):len(a.buf)]
	}
	named := false
	for _, l := range pending {
		if !named && l.Name > labels.MetricName {
			buf = appendString(appendString(buf, labels.MetricName), name)
			named = true
		}
		buf = appendString(appendString(buf, l.Name), l.Value)
	}
	if !named {
		buf = appendString(appendString(buf, labels.MetricName), name)
	}
	if size > arenaChunk/4 {
		return labelsFromData(yoloString(buf)), 0
	}
	a.buf = a.buf[:len(a.buf)+size]
	return labelsFromData(yoloString(buf)), size
}

// takeBack gives back the last n bytes appendSet took.
func (a *labelArena) takeBack(n int) {
	a.buf = a.buf[:len(a.buf)-n]
}

// appendString appends s with its length, as labels.Labels encodes it:
// one byte for 0-254, else 255 and 3 bytes little-endian.
func appendString(b []byte, s string) []byte {
	if n := len(s); n < 255 {
		b = append(b, byte(n))
	} else {
		b = append(b, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(b, s...)
}

// encodedLen is the length of s encoded by appendString.
func encodedLen(s string) int {
	if len(s) < 255 {
		return 1 + len(s)
	}
	return 4 + len(s)
}

// reset forgets the chunks, which a Batch took or the garbage collector
// will.
func (a *labelArena) reset() {
	clear(a.chunks)
	a.chunks, a.buf = a.chunks[:0], nil
}
