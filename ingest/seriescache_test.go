package ingest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// fakeKnown is a store's Known for tests: the series it holds by their
// labels, each a *fakeSeries handle, and an epoch that remove bumps.
type fakeKnown struct {
	mu     sync.Mutex
	epoch  uint64
	series map[string]*fakeSeries
	asked  int // KnownSeries calls
}

type fakeSeries struct{ lset string }

func newFakeKnown() *fakeKnown { return &fakeKnown{epoch: 1, series: map[string]*fakeSeries{}} }

func (k *fakeKnown) KnownEpoch() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.epoch
}

func (k *fakeKnown) KnownSeries(hash uint64, lset labels.Labels) (any, bool) {
	if hash != lset.Hash() {
		panic(fmt.Sprintf("KnownSeries(%x, %s): the labels' hash is %x", hash, lset, lset.Hash()))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.asked++
	if s := k.series[lset.String()]; s != nil {
		return s, true
	}
	return nil, false
}

// add makes the series of b known, as an append does.
func (k *fakeKnown) add(b *Batch) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sr := range b.Series {
		if key := sr.Labels.String(); k.series[key] == nil {
			k.series[key] = &fakeSeries{lset: key}
		}
	}
}

// remove forgets the series of lset, as a store removing an idle series.
func (k *fakeKnown) remove(lset string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.series, lset)
	k.epoch++
}

func (k *fakeKnown) handle(lset labels.Labels) any {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.series[lset.String()]; s != nil {
		return s
	}
	return nil
}

func (k *fakeKnown) lookups() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.asked
}

// appendLabelField appends a TimeSeries.labels field.
func appendLabelField(dst []byte, name, value string) []byte {
	l := prompb.Label{Name: name, Value: value}
	raw, err := l.Marshal()
	if err != nil {
		panic(err)
	}
	dst = append(dst, 0x0a)
	dst = binary.AppendUvarint(dst, uint64(len(raw)))
	return append(dst, raw...)
}

// appendSampleField appends a TimeSeries.samples field.
func appendSampleField(dst []byte, t int64, v float64) []byte {
	s := prompb.Sample{Timestamp: t, Value: v}
	raw, err := s.Marshal()
	if err != nil {
		panic(err)
	}
	dst = append(dst, 0x12)
	dst = binary.AppendUvarint(dst, uint64(len(raw)))
	return append(dst, raw...)
}

// cacheSeries returns the TimeSeries message of series i of a pool, with
// one sample at t, spelt one of the ways rng picks: in the layout every
// sender writes (most of the time), with its labels shuffled, an
// empty-valued label, a value of 128 bytes or more, a sample between its
// labels, or its labels after its sample. Series i has a label that
// changes with i/7 (the same host with other labels).
func cacheSeries(rng *rand.Rand, i int, t int64) []byte {
	kv := [][2]string{
		{"A", "upper"},
		{"__name__", fmt.Sprintf("metric_%d", i%5)},
		{"host", fmt.Sprintf("host-%d", i%7)},
		{"version", fmt.Sprintf("v%d", i/7)},
	}
	if i%5 == 3 {
		kv = append(kv, [2]string{"zone", "zürich-é"})
	}
	if i%11 == 4 {
		kv = append(kv, [2]string{"long", strings.Repeat("v", 120+i%20)})
	}
	layout := rng.IntN(12)
	switch layout {
	case 0:
		rng.Shuffle(len(kv), func(a, b int) { kv[a], kv[b] = kv[b], kv[a] })
	case 1:
		kv = append(kv, [2]string{"empty", ""})
	}
	var msg []byte
	switch layout {
	case 2: // a sample first
		msg = appendSampleField(msg, t, float64(i))
	}
	for j, l := range kv {
		msg = appendLabelField(msg, l[0], l[1])
		if layout == 3 && j == 1 { // a sample between labels
			msg = appendSampleField(msg, t, float64(i))
		}
	}
	if layout != 2 && layout != 3 {
		msg = appendSampleField(msg, t, float64(i))
	}
	return msg
}

// cacheRequest is a remote write body of n series of a pool of pool
// (repeats included) at t; with bad, one series is invalid, or the
// request is cut short, or it has metadata and a field of no meaning.
func cacheRequest(rng *rand.Rand, n, pool int, t int64, bad bool) []byte {
	var raw []byte
	for j := range n {
		msg := cacheSeries(rng, rng.IntN(pool), t)
		if bad && j == n/2 {
			msg = appendLabelField(msg[:0], "__name__", "bad")
			msg = appendLabelField(msg, "__reserved", "x")
			msg = appendSampleField(msg, t, 1)
		}
		raw = append(raw, 0x0a)
		raw = binary.AppendUvarint(raw, uint64(len(msg)))
		raw = append(raw, msg...)
		if bad && j == n/3 {
			md := prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "metric_1", Help: "h"}
			mraw, err := md.Marshal()
			if err != nil {
				panic(err)
			}
			raw = append(raw, 0x1a)
			raw = binary.AppendUvarint(raw, uint64(len(mraw)))
			raw = append(raw, mraw...)
			raw = append(raw, 0x28, 0x05) // field 5, a varint: skipped
		}
	}
	if bad && rng.IntN(2) == 0 {
		raw = raw[:rng.IntN(len(raw))] // an error somewhere, or a series cut short
	}
	return snappy.Encode(nil, raw)
}

// TestSeriesCacheEqualsUncached decodes request after request with a
// SeriesCache and without (DecodeRemoteWriteKnown), over a pool of series
// spelt in layouts the cache reads and others, invalid series included,
// with every series of a decoded batch then known and now and then one
// removed: the batches, their errors and their handles must be the same,
// with a cache of many slots or of four, and with every key of the cache
// colliding with every other (the label bytes must keep them apart).
func TestSeriesCacheEqualsUncached(t *testing.T) {
	for _, slots := range []int{4, 1 << 12} {
		for _, collide := range []bool{false, true} {
			t.Run(fmt.Sprintf("slots=%d/collide=%v", slots, collide), func(t *testing.T) {
				if collide {
					cacheKeyMask = 0
					defer func() { cacheKeyMask = ^uint64(0) }()
				}
				lim := DefaultLimits()
				k := newFakeKnown()
				c := NewSeriesCache(lim, k, slots)
				if c == nil {
					t.Log("this build caches no series")
					return
				}
				rng := rand.New(rand.NewPCG(21, uint64(slots)))
				for round := range 80 {
					body := cacheRequest(rng, 60, 20+round, int64(round)*1000, rng.IntN(6) == 0)
					plain, perr := DecodeRemoteWriteKnown(body, lim, k)
					cached, cerr := c.DecodeRemoteWrite(body)
					if fmt.Sprint(perr) != fmt.Sprint(cerr) {
						t.Fatalf("round %d: error %v without the cache, %v with it", round, perr, cerr)
					}
					if perr != nil {
						continue
					}
					for i := range cached.Series {
						sr := &cached.Series[i]
						if sr.Hash != sr.Labels.Hash() {
							t.Fatalf("round %d: %s has Hash %x, Labels.Hash() %x", round, sr.Labels, sr.Hash, sr.Labels.Hash())
						}
						if want := k.handle(sr.Labels); sr.Handle != want {
							t.Fatalf("round %d: %s has the handle %v, the store's is %v", round, sr.Labels, sr.Handle, want)
						}
						if want := sr.Labels.Get(labels.MetricName); sr.Name != want || i < len(plain.Series) && plain.Series[i].Name != want {
							t.Fatalf("round %d: %s has the name %q (%q without the cache)", round, sr.Labels, sr.Name, plain.Series[i].Name)
						}
					}
					if !sameBatch(plain, cached) {
						t.Fatalf("round %d: batches differ:\n%v\n%v", round, plain, cached)
					}
					k.add(cached)
					if round%10 == 9 {
						k.remove(cached.Series[rng.IntN(len(cached.Series))].Labels.String())
					}
				}
				hits, misses := c.Stats()
				t.Logf("%d hits, %d misses", hits, misses)
				// With 4 ways for every series, few are found, but some.
				if hits == 0 || slots > 4 && !collide && hits < 1000 {
					t.Fatalf("%d hits, %d misses: the cache was hardly used", hits, misses)
				}
			})
		}
	}
}

// TestSeriesCacheRemoval: an entry made while the store held its series
// is not used after the store removed the series (its epoch changed): the
// series comes without a handle, and once the store has it again with
// the store's new handle, which the entry then keeps (the store is not
// asked again).
func TestSeriesCacheRemoval(t *testing.T) {
	lim := DefaultLimits()
	k := newFakeKnown()
	c := NewSeriesCache(lim, k, 64)
	if c == nil {
		t.Skip("this build caches no series")
	}
	var raw []byte
	raw = appendLabelField(raw, "__name__", "up")
	raw = appendLabelField(raw, "job", "node")
	raw = appendSampleField(raw, 1000, 1)
	body := snappy.Encode(nil, append(binary.AppendUvarint([]byte{0x0a}, uint64(len(raw))), raw...))
	decode := func() *Series {
		t.Helper()
		b, err := c.DecodeRemoteWrite(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Series) != 1 {
			t.Fatalf("%d series", len(b.Series))
		}
		return &b.Series[0]
	}
	if sr := decode(); sr.Handle != nil {
		t.Fatalf("a new series came with the handle %v", sr.Handle)
	}
	k.add(&Batch{Series: []Series{{Labels: labels.FromStrings("__name__", "up", "job", "node")}}})
	first := decode() // known: remembered
	if first.Handle == nil {
		t.Fatal("a known series came without a handle")
	}
	asked := k.lookups()
	if sr := decode(); sr.Handle != first.Handle || k.lookups() != asked {
		t.Fatalf("from the cache: handle %v (want %v), the store asked %d times more", sr.Handle, first.Handle, k.lookups()-asked)
	}
	if h, _ := c.Stats(); h != 1 {
		t.Fatalf("%d hits, want 1", h)
	}
	k.remove(first.Labels.String())
	if sr := decode(); sr.Handle != nil {
		t.Fatalf("after the series' removal it came with the handle %v", sr.Handle)
	}
	k.add(&Batch{Series: []Series{{Labels: first.Labels}}})
	again := decode()
	if again.Handle == nil || again.Handle == first.Handle {
		t.Fatalf("the series made again came with the handle %v (the removed one's: %v)", again.Handle, first.Handle)
	}
	asked = k.lookups()
	if sr := decode(); sr.Handle != again.Handle || k.lookups() != asked {
		t.Fatalf("renewed entry: handle %v (want %v), the store asked %d times more", sr.Handle, again.Handle, k.lookups()-asked)
	}
}

// TestSeriesCacheConcurrent has 4 goroutines decode requests with one
// cache while the store learns their series and now and then forgets one:
// each batch equals the decode without the cache. Run it under -race.
func TestSeriesCacheConcurrent(t *testing.T) {
	lim := DefaultLimits()
	k := newFakeKnown()
	c := NewSeriesCache(lim, k, 256)
	if c == nil {
		t.Skip("this build caches no series")
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 31))
			for round := range 40 {
				body := cacheRequest(rng, 50, 60, int64(round), false)
				cached, err := c.DecodeRemoteWrite(body)
				if err != nil {
					t.Error(err)
					return
				}
				plain, err := DecodeRemoteWrite(body, lim)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range cached.Series {
					if !labels.Equal(cached.Series[i].Labels, plain.Series[i].Labels) || cached.Series[i].Hash != plain.Series[i].Hash {
						t.Errorf("goroutine %d: %s decoded as %s", g, plain.Series[i].Labels, cached.Series[i].Labels)
						return
					}
					if cached.Series[i].Name != plain.Series[i].Name {
						t.Errorf("goroutine %d: %s has the name %q", g, plain.Series[i].Labels, cached.Series[i].Name)
						return
					}
					if h := cached.Series[i].Handle; h != nil && h.(*fakeSeries).lset != plain.Series[i].Labels.String() {
						t.Errorf("goroutine %d: %s came with the handle of %s", g, plain.Series[i].Labels, h.(*fakeSeries).lset)
						return
					}
				}
				k.add(cached)
				cached.Release()
				if round%8 == 7 {
					k.remove(plain.Series[0].Labels.String())
				}
			}
		})
	}
	wg.Wait()
	if h, _ := c.Stats(); h == 0 {
		t.Fatal("the cache was never used")
	}
	// The entries of one name share its bytes (SeriesCache.intern).
	byName := map[string]*byte{}
	for i := range c.slots {
		e := c.slots[i].Load()
		if e == nil {
			continue
		}
		p := unsafe.StringData(e.name)
		if q, ok := byName[e.name]; ok && q != p {
			t.Fatalf("two entries of %q keep it in other memory", e.name)
		}
		byName[e.name] = p
	}
	if len(byName) == 0 || len(byName) > 5 {
		t.Fatalf("entries of %d names, want 1-5", len(byName))
	}
}

// TestRawMatches: the label bytes match a label set only in the layout
// every sender writes, byte for byte.
func TestRawMatches(t *testing.T) {
	lset := labels.FromStrings("__name__", "up", "job", "node")
	data := labelsDataOrSkip(t, lset)
	f := func(want bool, kv ...string) {
		t.Helper()
		var raw []byte
		for i := 0; i < len(kv); i += 2 {
			raw = appendLabelField(raw, kv[i], kv[i+1])
		}
		if got := rawMatches(raw, data); got != want {
			t.Fatalf("rawMatches(%q) = %v, want %v", kv, got, want)
		}
		if len(raw) > 0 && want {
			for cut := range len(raw) {
				if rawMatches(raw[:cut], data) {
					t.Fatalf("rawMatches of %q cut at %d is true", kv, cut)
				}
			}
		}
	}
	f(true, "__name__", "up", "job", "node")
	f(false, "job", "node", "__name__", "up")
	f(false, "__name__", "up", "job", "node", "x", "")
	f(false, "__name__", "up")
	f(false, "__name__", "up", "job", "nodes")
	f(false, "__name__", "up", "job", "nod")
	f(false, "__name__", "up", "jo", "node")
	f(false)
	long := labels.FromStrings("__name__", "up", "v", strings.Repeat("x", 200))
	var raw []byte
	raw = appendLabelField(raw, "__name__", "up")
	raw = appendLabelField(raw, "v", strings.Repeat("x", 200))
	if rawMatches(raw, labelsDataOrSkip(t, long)) {
		t.Fatal("a value of 200 bytes matched: the cache reads values under 128 bytes only")
	}
}

func labelsDataOrSkip(t *testing.T, lset labels.Labels) string {
	if !arenaLabels {
		t.Skip("this build's labels.Labels is not an encoding")
	}
	return labelsData(lset)
}
