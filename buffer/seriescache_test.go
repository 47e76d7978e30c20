package buffer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/ingest"
)

// TestSeriesCacheEqualsPlain decodes the same requests without the head's
// help and with it through an ingest.SeriesCache (series found by their
// label bytes): the batches, errors included, must be identical, every
// handle must be the head's series of the labels, and two heads, one given
// each, must end up holding the same series and samples.
func TestSeriesCacheEqualsPlain(t *testing.T) {
	lim := ingest.DefaultLimits()
	plainHead, head := newTestHead(t, Options{}), newTestHead(t, Options{})
	cache := ingest.NewSeriesCache(lim, head, 1<<10)
	if cache == nil {
		t.Skip("this build caches no series")
	}
	rng := rand.New(rand.NewPCG(13, 14))
	bads := []string{"", "", "", "reserved", "utf8", "duplicate"}
	for round := range 60 {
		req := knownProto(rng, 100, 40+round, int64(round)*1000, bads[rng.IntN(len(bads))])
		// Most series in the layout of senders, which the cache reads;
		// the others as knownSeries spells them.
		senderLayout(req, func(i int) bool { return i%4 != 0 })
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		body := snappy.Encode(nil, raw)
		plain, perr := ingest.DecodeRemoteWrite(body, lim)
		cached, cerr := cache.DecodeRemoteWrite(body)
		if fmt.Sprint(perr) != fmt.Sprint(cerr) {
			t.Fatalf("round %d: error %v without the head, %v with the cache", round, perr, cerr)
		}
		if perr != nil {
			continue
		}
		if cached.KnownEpoch != head.KnownEpoch() {
			t.Fatalf("round %d: batch epoch %d, head %d", round, cached.KnownEpoch, head.KnownEpoch())
		}
		cmp := *cached
		cmp.KnownEpoch = 0
		cmp.Series = append([]ingest.Series(nil), cached.Series...)
		for i := range cmp.Series {
			sr := &cmp.Series[i]
			if sr.Hash != sr.Labels.Hash() {
				t.Fatalf("series %s: Hash %x, Labels.Hash() %x", sr.Labels, sr.Hash, sr.Labels.Hash())
			}
			want, _ := head.KnownSeries(sr.Hash, sr.Labels)
			if sr.Handle != want {
				t.Fatalf("series %s: handle %v, the head's series %v", sr.Labels, sr.Handle, want)
			}
			sr.Handle = nil
		}
		if !sameContent(plain, &cmp) {
			t.Fatalf("round %d: batches differ:\n%v\n%v", round, plain, cached)
		}
		if err := plainHead.Append(plain); err != nil {
			t.Fatal(err)
		}
		if err := head.Append(cached); err != nil {
			t.Fatal(err)
		}
		cached.Release()
	}
	if hits, _ := cache.Stats(); hits < 1000 {
		t.Fatalf("%d series found in the cache", hits)
	}
	p, k := headContent(t, plainHead), headContent(t, head)
	if len(p) < 90 {
		t.Fatalf("only %d series written", len(p))
	}
	if !reflect.DeepEqual(p, k) {
		t.Fatalf("heads differ: %d series without the head's help, %d with the cache", len(p), len(k))
	}
}

// senderLayout puts the labels of the series i of req for which which(i)
// is true in the layout senders write (sorted, no empty value).
func senderLayout(req *prompb.WriteRequest, which func(i int) bool) *prompb.WriteRequest {
	for i := range req.Timeseries {
		if ls := req.Timeseries[i].Labels; which(i) {
			ls = slices.DeleteFunc(ls, func(l prompb.Label) bool { return l.Value == "" })
			slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
			req.Timeseries[i].Labels = ls
		}
	}
	return req
}

// TestSeriesCacheAfterRemoval: a series found through the cache while the
// head held it is removed by two flushes (idle and empty twice), then sent
// again: the cache must not hand out the removed series (its sample would
// be lost in it), and the series made again is the one later requests
// find. After a restart (a new store and cache over the same directory)
// the replayed series is found too.
func TestSeriesCacheAfterRemoval(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	lim := ingest.DefaultLimits()
	cache := ingest.NewSeriesCache(lim, s, 64)
	if cache == nil {
		t.Skip("this build caches no series")
	}
	write := func(c *ingest.SeriesCache, s *Store, host string, ts int64) *ingest.Batch {
		t.Helper()
		b, err := c.DecodeRemoteWrite(upRequest(t, host, ts))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	write(cache, s, "a", 1000) // new
	if b := write(cache, s, "a", 2000); b.Series[0].Handle == nil {
		t.Fatal("a series the head holds came without a handle") // and it is cached now
	}
	if b := write(cache, s, "a", 3000); b.Series[0].Handle == nil {
		t.Fatal("a cached series came without a handle")
	}
	if hits, _ := cache.Stats(); hits != 1 {
		t.Fatalf("%d hits, want 1", hits)
	}
	write(cache, s, "b", 1000)
	mustFlush(t, s) // a and b emptied
	write(cache, s, "b", 4000)
	mustFlush(t, s) // a emptied twice: removed
	if got := s.Head().NumSeries(); got != 1 {
		t.Fatalf("%d series after the second flush, want 1 (b)", got)
	}
	b := write(cache, s, "a", 5000)
	if b.Series[0].Handle != nil {
		t.Fatalf("the removed series came from the cache: %v", b.Series[0].Handle)
	}
	a := labels.MustNewMatcher(labels.MatchEqual, "host", "a")
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, a); len(got) != 1 || got[0].T != 5000 {
		t.Fatalf("a after its removal: %v", got)
	}
	b = write(cache, s, "a", 6000)
	if b.Series[0].Handle == nil || b.KnownEpoch != s.Head().KnownEpoch() {
		t.Fatalf("the series made again: handle %v, epoch %d (head %d)", b.Series[0].Handle, b.KnownEpoch, s.Head().KnownEpoch())
	}
	hits, _ := cache.Stats()
	write(cache, s, "a", 7000)
	if h, _ := cache.Stats(); h != hits+1 {
		t.Fatalf("the series made again is not found in the cache (%d hits, then %d)", hits, h)
	}
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, a); len(got) != 3 {
		t.Fatalf("a: %v", got)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{}, sink)
	defer s.wal.Close()
	cache = ingest.NewSeriesCache(lim, s, 64)
	if b := write(cache, s, "a", 8000); b.Series[0].Handle == nil {
		t.Fatal("the replayed series came without a handle")
	}
	write(cache, s, "a", 9000)
	if b := write(cache, s, "a", 10000); b.Series[0].Handle == nil {
		t.Fatal("the replayed series came from the cache without a handle")
	}
	if hits, _ := cache.Stats(); hits != 2 {
		t.Fatalf("%d hits after the restart, want 2", hits)
	}
	if got := readAll(t, s.Head(), 5000, math.MaxInt64, a); len(got) != 6 {
		t.Fatalf("a after the restart: %v", got)
	}
}

// TestSeriesCacheAllocations: a request of 2,000 series found in the
// cache decodes with a few allocations, not one or more per series.
func TestSeriesCacheAllocations(t *testing.T) {
	lim := ingest.DefaultLimits()
	h := newTestHead(t, Options{})
	cache := ingest.NewSeriesCache(lim, h, 1<<12)
	if cache == nil {
		t.Skip("this build caches no series")
	}
	body := nodeRequest(t, 2000)
	for range 2 { // new, then known: cached
		b, err := cache.DecodeRemoteWrite(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(5, func() {
		b, err := cache.DecodeRemoteWrite(body)
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
	})
	if hits, _ := cache.Stats(); hits < 5*2000 {
		t.Fatalf("%d hits", hits)
	}
	t.Logf("allocations per request of 2,000 cached series: %.0f", allocs)
	if allocs > 100 {
		t.Fatalf("%.0f allocations, want at most 100", allocs)
	}
}

// TestSeriesCacheConcurrentAppends has 4 writers decode through one cache
// and append at once, over one pool of series, while a fifth flushes now
// and then (series left idle by two flushes are removed, and their
// handles must not be used any more); then each writer sends one more
// request through the cache, whose samples must all be readable. Run it
// under -race.
func TestSeriesCacheConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	lim := ingest.DefaultLimits()
	cache := ingest.NewSeriesCache(lim, s, 256)
	if cache == nil {
		t.Skip("this build caches no series")
	}
	const writers, rounds = 4, 30
	send := func(req *prompb.WriteRequest) error {
		raw, err := req.Marshal()
		if err != nil {
			return err
		}
		b, err := cache.DecodeRemoteWrite(snappy.Encode(nil, raw))
		if err != nil {
			return err
		}
		if err := s.Append(b); err != nil {
			return err
		}
		b.Release()
		return nil
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 17))
			for r := range rounds {
				// Each writer its own timestamps: no sample overwrites another.
				req := senderLayout(knownProto(rng, 40, 30+r, int64(r*writers+w), ""), func(i int) bool { return i%8 != 0 })
				if err := send(req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 6 {
			if err := s.Flush(t.Context()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	if hits, _ := cache.Stats(); hits < 1000 {
		t.Fatalf("%d series found in the cache", hits)
	}
	mustFlush(t, s)
	mustFlush(t, s) // every series is removed now (the last flushes above may have done it)
	if n := s.Head().NumSeries(); n != 0 || s.Head().KnownEpoch() == 1 {
		t.Fatalf("%d series after two flushes without writes, epoch %d", n, s.Head().KnownEpoch())
	}
	rng := rand.New(rand.NewPCG(99, 17))
	const last = 1_000_000
	req := senderLayout(knownProto(rng, 60, 60, last, ""), func(int) bool { return true })
	if err := send(req); err != nil {
		t.Fatal(err)
	}
	for _, ts := range req.Timeseries {
		var ms []*labels.Matcher
		for _, l := range ts.Labels {
			if l.Value != "" {
				ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
			}
		}
		if got := readAll(t, s.Head(), last, last, ms...); len(got) != 1 {
			t.Fatalf("%v at %d: %v", ts.Labels, last, got)
		}
	}
}
