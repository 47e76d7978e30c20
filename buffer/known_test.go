package buffer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/strata-tsdb/strata/ingest"
)

// knownSeries returns the label pairs of series i of a pool, spelt one of
// several ways on the wire (rng picks): labels in another order, with or
// without an empty-valued label that the decoder drops. The pool has label
// names sorting before __name__, non-ASCII values and a value over 127
// bytes (a two-byte length).
func knownSeries(rng *rand.Rand, i int) []prompb.Label {
	kv := [][2]string{
		{"__name__", fmt.Sprintf("metric_%d", i%5)},
		{"A", "upper"},
		{"_x", fmt.Sprint(i % 3)},
		{"host", fmt.Sprintf("host-%d", i)},
	}
	switch i % 4 {
	case 1:
		kv = append(kv, [2]string{"zone", "zürich-é"})
	case 2:
		kv = append(kv, [2]string{"long", strings.Repeat("v", 200+i)})
	}
	if rng.IntN(4) == 0 {
		kv = append(kv, [2]string{"dropped", ""})
	}
	if rng.IntN(2) == 0 {
		rng.Shuffle(len(kv), func(a, b int) { kv[a], kv[b] = kv[b], kv[a] })
	}
	out := make([]prompb.Label, len(kv))
	for j, p := range kv {
		out[j] = prompb.Label{Name: p[0], Value: p[1]}
	}
	return out
}

// knownRequest is a remote write body of n series drawn from a pool of
// pool series (repeats included), each with one sample at ts; with bad,
// one series is invalid in the way bad says.
func knownRequest(t testing.TB, rng *rand.Rand, n, pool int, ts int64, bad string) []byte {
	t.Helper()
	raw, err := knownProto(rng, n, pool, ts, bad).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// nodeRequest is a remote write body of n series of 3 labels (40 metric
// names, an instance each), one sample each.
func nodeRequest(t testing.TB, n int) []byte {
	t.Helper()
	req := &prompb.WriteRequest{}
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: fmt.Sprintf("m_%d", i%40)}, {Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250)}, {Name: "job", Value: "node"}},
			Samples: []prompb.Sample{{Timestamp: 1, Value: 1}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// upRequest is a remote write body of the series up{host=host}, with
// one sample at ts valued ts.
func upRequest(t testing.TB, host string, ts int64) []byte {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "host", Value: host}},
		Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts)}},
	}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// v2Body is req as a remote write 2.0 body: the same labels in the same
// order (empty values included), samples and nothing else.
func v2Body(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	syms, ids := []string{""}, map[string]uint32{"": 0}
	ref := func(s string) uint32 {
		id, ok := ids[s]
		if !ok {
			id = uint32(len(syms))
			ids[s] = id
			syms = append(syms, s)
		}
		return id
	}
	var r2 writev2.Request
	for _, ts := range req.Timeseries {
		var refs []uint32
		for _, l := range ts.Labels {
			refs = append(refs, ref(l.Name), ref(l.Value))
		}
		var ss []writev2.Sample
		for _, x := range ts.Samples {
			ss = append(ss, writev2.Sample{Value: x.Value, Timestamp: x.Timestamp})
		}
		r2.Timeseries = append(r2.Timeseries, writev2.TimeSeries{LabelsRefs: refs, Samples: ss})
	}
	r2.Symbols = syms
	raw, err := r2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// knownProto is knownRequest's request before encoding.
func knownProto(rng *rand.Rand, n, pool int, ts int64, bad string) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for range n {
		i := rng.IntN(pool)
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: knownSeries(rng, i), Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i)}}})
	}
	if bad != "" {
		ls := knownSeries(rng, rng.IntN(pool))
		switch bad {
		case "reserved":
			ls = append(ls, prompb.Label{Name: "__reserved", Value: "x"})
		case "utf8":
			ls = append(ls, prompb.Label{Name: "bin", Value: "\xff\xfe"})
		case "duplicate":
			ls = append(ls, ls[rng.IntN(len(ls))])
		}
		at := rng.IntN(len(req.Timeseries))
		req.Timeseries[at].Labels = ls
	}
	return req
}

// headContent returns every series of h with its samples, by labels.
func headContent(t testing.TB, h *Head) map[string][]ingest.Sample {
	t.Helper()
	ss, err := h.Select(context.Background(), true, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]ingest.Sample{}
	for _, s := range ss {
		out[s.Labels.String()] = drain(t, s.Iterator())
	}
	return out
}

// TestDecodeKnownEqualsPlain decodes the same requests without the head's
// help and with it (ingest.DecodeRemoteWriteKnown, labels of known series
// taken from the head): the batches, errors included, must be identical,
// and two heads, one given each, must end up holding the same series and
// samples.
func TestDecodeKnownEqualsPlain(t *testing.T) {
	lim := ingest.DefaultLimits()
	plainHead, knownHead := newTestHead(t, Options{}), newTestHead(t, Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	bads := []string{"", "", "", "reserved", "utf8", "duplicate"}
	v2Handles := 0
	for round := range 60 {
		req := knownProto(rng, 100, 40+round, int64(round)*1000, bads[rng.IntN(len(bads))])
		// Remote write 2.0 takes the same help; it leaves an invalid
		// series out instead of refusing the request.
		body2 := v2Body(t, req)
		plain2, prej, perr2 := ingest.DecodeRemoteWriteV2(body2, lim)
		known2, krej, kerr2 := ingest.DecodeRemoteWriteV2Known(body2, lim, knownHead)
		if fmt.Sprint(perr2, prej) != fmt.Sprint(kerr2, krej) {
			t.Fatalf("round %d, 2.0: %v %v without the head, %v %v with it", round, perr2, prej, kerr2, krej)
		}
		if perr2 != nil {
			t.Fatalf("round %d, 2.0: %v", round, perr2)
		}
		known2.KnownEpoch = 0
		for i := range known2.Series {
			if known2.Series[i].Handle != nil {
				v2Handles++
			}
			if !labels.Equal(known2.Series[i].Labels, plain2.Series[i].Labels) {
				break // sameContent below says more
			}
			if _, held := knownHead.KnownSeries(plain2.Series[i].Hash, plain2.Series[i].Labels); held != (known2.Series[i].Handle != nil) {
				t.Fatalf("round %d, 2.0: %s held by the head: %v, handle %v", round, plain2.Series[i].Labels, held, known2.Series[i].Handle)
			}
			known2.Series[i].Handle = nil
		}
		if !sameContent(plain2, known2) {
			t.Fatalf("round %d, 2.0: batches differ:\n%v\n%v", round, plain2, known2)
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		body := snappy.Encode(nil, raw)
		plain, perr := ingest.DecodeRemoteWrite(body, lim)
		known, kerr := ingest.DecodeRemoteWriteKnown(body, lim, knownHead)
		if fmt.Sprint(perr) != fmt.Sprint(kerr) {
			t.Fatalf("round %d: error %v without the head, %v with it", round, perr, kerr)
		}
		if perr != nil {
			if plain != nil || known != nil {
				t.Fatalf("round %d: a batch with the error", round)
			}
			continue
		}
		// The head's help shows in the handles, which must name the
		// series the head holds, and nowhere else.
		if known.KnownEpoch != knownHead.KnownEpoch() {
			t.Fatalf("round %d: batch epoch %d, head %d", round, known.KnownEpoch, knownHead.KnownEpoch())
		}
		known.KnownEpoch = 0
		for i := range known.Series {
			sr := &known.Series[i]
			if sr.Hash != sr.Labels.Hash() {
				t.Fatalf("series %s: Hash %x, Labels.Hash() %x", sr.Labels, sr.Hash, sr.Labels.Hash())
			}
			_, held := knownHead.KnownSeries(sr.Hash, sr.Labels)
			if ms, _ := sr.Handle.(*memSeries); held != (ms != nil) || ms != nil && !knownHead.syms.equal(ms.lset, sr.Labels) {
				t.Fatalf("series %s: handle %v, held by the head: %v", sr.Labels, sr.Handle, held)
			}
			sr.Handle = nil
		}
		if !sameContent(plain, known) {
			t.Fatalf("round %d: batches differ:\n%v\n%v", round, plain, known)
		}
		known, _ = ingest.DecodeRemoteWriteKnown(body, lim, knownHead)
		if err := plainHead.Append(plain); err != nil {
			t.Fatal(err)
		}
		if err := knownHead.Append(known); err != nil {
			t.Fatal(err)
		}
	}
	if v2Handles == 0 {
		t.Fatal("remote write 2.0 never took the head's help")
	}
	p, k := headContent(t, plainHead), headContent(t, knownHead)
	if len(p) < 90 {
		t.Fatalf("only %d series written", len(p))
	}
	if !reflect.DeepEqual(p, k) {
		t.Fatalf("heads differ: %d series without the head's help, %d with", len(p), len(k))
	}
}

// TestDecodeKnownAllocations checks what the head's help is for: a
// request of 2,000 series the head holds decodes with a few allocations,
// not one or more per series.
func TestDecodeKnownAllocations(t *testing.T) {
	lim := ingest.DefaultLimits()
	h := newTestHead(t, Options{})
	body := nodeRequest(t, 2000)
	b, err := ingest.DecodeRemoteWriteKnown(body, lim, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Append(b); err != nil {
		t.Fatal(err)
	}
	known := testing.AllocsPerRun(5, func() {
		if _, err := ingest.DecodeRemoteWriteKnown(body, lim, h); err != nil {
			t.Fatal(err)
		}
	})
	plain := testing.AllocsPerRun(5, func() {
		if _, err := ingest.DecodeRemoteWrite(body, lim); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per request of 2,000 series: %.0f with the head's help, %.0f without", known, plain)
	if known > 100 || plain < 2000 {
		t.Fatalf("%.0f allocations with the head's help, %.0f without: want at most 100 and at least 2,000", known, plain)
	}
}

// TestDecodeKnownConcurrent has 4 writers decode with the head's help and
// append at once, over one pool of series, so that lookups of known series
// race with the creation of the same series by other writers. Each writer
// reads its sample back after each append, and at the end the head holds
// exactly what was acknowledged. Run it under -race.
func TestDecodeKnownConcurrent(t *testing.T) {
	lim := ingest.DefaultLimits()
	h := newTestHead(t, Options{})
	const writers, rounds = 4, 40
	var (
		mu   sync.Mutex
		want = map[string]map[int64]bool{}
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for r := range rounds {
				ts := int64(r*writers + w)
				b, err := ingest.DecodeRemoteWriteKnown(knownRequest(t, rng, 50, 30+r, ts, ""), lim, h)
				if err != nil {
					t.Error(err)
					return
				}
				if err := h.Append(b); err != nil {
					t.Error(err)
					return
				}
				sr := b.Series[rng.IntN(len(b.Series))]
				got := readAll(t, h, ts, ts, labels.MustNewMatcher(labels.MatchEqual, "host", sr.Labels.Get("host")))
				if len(got) != 1 || got[0].T != ts {
					t.Errorf("writer %d: %s read back %v after its append at %d", w, sr.Labels, got, ts)
					return
				}
				mu.Lock()
				for _, sr := range b.Series {
					k := sr.Labels.String()
					if want[k] == nil {
						want[k] = map[int64]bool{}
					}
					want[k][ts] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got := headContent(t, h)
	if len(got) != len(want) {
		t.Fatalf("head holds %d series, %d were written", len(got), len(want))
	}
	for k, ts := range want {
		if len(got[k]) != len(ts) {
			t.Fatalf("%s: %d samples, %d written", k, len(got[k]), len(ts))
		}
		for _, x := range got[k] {
			if !ts[x.T] {
				t.Fatalf("%s: sample at %d never written", k, x.T)
			}
		}
	}
}

// TestKnownHandleAfterRemoval decodes a batch while its series is in the
// head, then lets two flushes remove the series (idle and empty twice)
// before the batch is appended: the batch's handle names a removed series,
// and the append must make the series anew, its sample readable, not
// write into the removed one.
func TestKnownHandleAfterRemoval(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{}, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	lim := ingest.DefaultLimits()
	write := func(b *ingest.Batch) {
		t.Helper()
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	decode := func(host string, ts int64) *ingest.Batch {
		t.Helper()
		b, err := ingest.DecodeRemoteWriteKnown(upRequest(t, host, ts), lim, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write(decode("a", 1000))
	stale := decode("a", 2000)
	if stale.Series[0].Handle == nil {
		t.Fatal("a series the head holds came without a handle")
	}
	write(decode("b", 1000))
	mustFlush(t, s) // a and b emptied
	write(decode("b", 2000))
	mustFlush(t, s) // a emptied twice: removed
	if got := s.Head().NumSeries(); got != 1 {
		t.Fatalf("%d series after the second flush, want 1 (b)", got)
	}
	write(stale)
	a := labels.MustNewMatcher(labels.MatchEqual, "host", "a")
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, a); len(got) != 1 || got[0].T != 2000 {
		t.Fatalf("a after its removal and an append with a stale handle: %v", got)
	}
	// A batch decoded now takes the new series' handle, and is used.
	fresh := decode("a", 3000)
	if fresh.KnownEpoch != s.Head().KnownEpoch() || fresh.Series[0].Handle == nil {
		t.Fatalf("epoch %d (head %d), handle %v", fresh.KnownEpoch, s.Head().KnownEpoch(), fresh.Series[0].Handle)
	}
	write(fresh)
	if got := readAll(t, s.Head(), math.MinInt64, math.MaxInt64, a); len(got) != 2 {
		t.Fatalf("a: %v", got)
	}
}

// decodeKnown returns the batch of one sample of lset at ts, written as
// remote write and decoded with s's help (handles included).
func decodeKnown(t testing.TB, s *Store, lset labels.Labels, ts int64, v float64) *ingest.Batch {
	t.Helper()
	var pls []prompb.Label
	lset.Range(func(l labels.Label) { pls = append(pls, prompb.Label{Name: l.Name, Value: l.Value}) })
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: pls, Samples: []prompb.Sample{{Timestamp: ts, Value: v}}}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ingest.DecodeRemoteWriteKnown(snappy.Encode(nil, raw), ingest.DefaultLimits(), s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameContent reports whether two batches hold the same content: their
// exported fields.
func sameContent(a, b *ingest.Batch) bool {
	return reflect.DeepEqual(a.Series, b.Series) && reflect.DeepEqual(a.Exemplars, b.Exemplars) &&
		reflect.DeepEqual(a.Metadata, b.Metadata) && a.DroppedExemplars == b.DroppedExemplars && a.KnownEpoch == b.KnownEpoch
}

// TestDecodeKnownRelease has 4 writers decode with the head's help,
// append and release their batches at once: the labels of such a batch
// are in memory that Release gives to the next decode, so the head must
// keep copies of what it keeps. Each batch equals the plain decode of its
// request, and at the end the head's series and samples are those of a
// head given the plain batches. Run it under -race.
func TestDecodeKnownRelease(t *testing.T) {
	lim := ingest.DefaultLimits()
	h, plainHead := newTestHead(t, Options{}), newTestHead(t, Options{})
	const writers, rounds = 4, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for r := range rounds {
				body := knownRequest(t, rng, 60, 40+r, int64(r*writers+w), "")
				plain, err := ingest.DecodeRemoteWrite(body, lim)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := ingest.DecodeRemoteWriteKnown(body, lim, h)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range b.Series {
					if !labels.Equal(b.Series[i].Labels, plain.Series[i].Labels) {
						t.Errorf("writer %d: series %s decoded as %s", w, plain.Series[i].Labels, b.Series[i].Labels)
						return
					}
				}
				if err := h.Append(b); err != nil {
					t.Error(err)
					return
				}
				b.Release()
				if err := plainHead.Append(plain); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := headContent(t, h), headContent(t, plainHead); !reflect.DeepEqual(got, want) || len(got) < 40 {
		t.Fatalf("the head of released batches holds %d series, the plain one %d, or they differ", len(got), len(want))
	}
}
