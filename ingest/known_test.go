package ingest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// collidingRequests returns remote write requests whose series repeat
// within a request under other spellings (labels in another order, an
// extra empty-valued label), so that deduplication has work to do.
func collidingRequests(t *testing.T) [][]byte {
	rng := rand.New(rand.NewPCG(7, 8))
	var out [][]byte
	for r := range 4 {
		req := &prompb.WriteRequest{}
		for i := range 300 {
			s := i % 97 // every series three times or so
			kv := []string{"__name__", fmt.Sprintf("m_%d", s%7), "host", fmt.Sprintf("h%d", s), "A", "x", "_z", "é"}
			// Another order each time, sometimes an empty-valued label.
			rng.Shuffle(len(kv)/2, func(a, b int) { kv[2*a], kv[2*b] = kv[2*b], kv[2*a]; kv[2*a+1], kv[2*b+1] = kv[2*b+1], kv[2*a+1] })
			if rng.IntN(3) == 0 {
				kv = append(kv, "empty", "")
			}
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: pl(kv...), Samples: ps(float64(1000*r+i), float64(i))})
		}
		out = append(out, encodeRW(t, req))
	}
	return out
}

// TestSeriesIndexCollisions decodes the same requests with every label
// hash colliding in the builder's series index (indexMask 0) and without:
// the batches must be identical, each series once with all its samples.
func TestSeriesIndexCollisions(t *testing.T) {
	lim := DefaultLimits()
	lp := []byte("cpu,host=a usage=1,idle=2 1000\ncpu,host=b usage=3 1000\ncpu,host=a usage=4,idle=5 2000\nmem,host=a free=1 1000\n")
	decodeAll := func() []*Batch {
		var out []*Batch
		for _, body := range collidingRequests(t) {
			b, err := DecodeRemoteWrite(body, lim)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		b, err := DecodeLineProtocol(lp, "ms", time.Unix(0, 0), lim)
		if err != nil {
			t.Fatal(err)
		}
		return append(out, b)
	}
	plain := decodeAll()
	indexMask = 0
	colliding := decodeAll()
	indexMask = ^uint64(0)
	for i := range plain {
		if !sameBatch(plain[i], colliding[i]) {
			t.Fatalf("batch %d differs with colliding hashes:\n%v\n%v", i, plain[i], colliding[i])
		}
	}
	if n := len(plain[0].Series); n != 97 {
		t.Fatalf("request 0 has %d series, want 97", n)
	}
	if n := plain[0].NumSamples(); n != 300 {
		t.Fatalf("request 0 has %d samples, want 300", n)
	}
	if n := len(plain[len(plain)-1].Series); n != 4 {
		t.Fatalf("line protocol gave %d series, want 4: %v", n, plain[len(plain)-1].Series)
	}
	for _, b := range plain {
		for _, sr := range b.Series {
			if sr.Hash != sr.Labels.Hash() {
				t.Fatalf("series %s: Hash %x, Labels.Hash() %x", sr.Labels, sr.Hash, sr.Labels.Hash())
			}
		}
	}
}

// TestDecodeASCIIValidation checks the ASCII shortcut of label validation
// against checkLabel on names and values at and around every limit and
// rule: the same error, or none, either way.
func TestDecodeASCIIValidation(t *testing.T) {
	lim := Limits{MaxLabelNameLength: 8, MaxLabelValueLength: 8}
	names := []string{"", "a", "_", "__", "__a", "_a", "a__", "abcdefgh", "abcdefghi", "1a", "a-b", "é", "a\xff"}
	values := []string{"v", "12345678", "123456789", "é", "\xff", "a\x80"}
	for _, legacy := range []bool{false, true} {
		lim.LegacyNames = legacy
		for _, n := range names {
			for _, v := range values {
				want := checkLabel(n, v, lim)
				req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: pl("__name__", "m", n, v), Samples: ps(1, 1)}}}
				_, got := DecodeRemoteWrite(encodeRW(t, req), lim)
				if (want == nil) != (got == nil) || (want != nil && !reflect.DeepEqual(want.(*Error).Err, got.(*Error).Err)) {
					t.Errorf("legacy %v, label %q=%q: checkLabel says %v, the decoder %v", legacy, n, v, want, got)
				}
				if isASCII(n) && isASCII(v) && asciiLabelOK(n, v, lim) && want != nil {
					t.Errorf("legacy %v, label %q=%q: the shortcut passes what checkLabel refuses (%v)", legacy, n, v, want)
				}
			}
		}
	}
	for _, s := range []string{"", "a", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnop\x80", "\x80bcdefghijklmnop", "abcdefg\xc3\xa9"} {
		want := true
		for i := 0; i < len(s); i++ {
			want = want && s[i] < 0x80
		}
		if isASCII(s) != want {
			t.Errorf("isASCII(%q) = %v", s, !want)
		}
	}
}

// TestBatchRelease: batches whose memory was given back (Batch.Release)
// and reused by later decodes, by several goroutines at once, hold what a
// decode without reuse gives; a released batch is empty. Run it under
// -race.
func TestBatchRelease(t *testing.T) {
	lim := DefaultLimits()
	bodies := collidingRequests(t)
	want := make([]*Batch, len(bodies))
	for i, body := range bodies {
		b, err := DecodeRemoteWrite(body, lim)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b // never released
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for r := range 50 {
				i := (g + r) % len(bodies)
				b, err := DecodeRemoteWrite(bodies[i], lim)
				if err != nil {
					t.Error(err)
					return
				}
				if !sameBatch(b, want[i]) {
					t.Errorf("goroutine %d, round %d: a batch in reused memory differs", g, r)
					return
				}
				b.Release()
				if len(b.Series) != 0 {
					t.Error("a released batch still has series")
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// sameBatch reports whether a and b hold the same content (the memory
// Release gives back is not content).
func sameBatch(a, b *Batch) bool {
	x, y := *a, *b
	x.mem, y.mem = nil, nil
	return reflect.DeepEqual(x, y)
}

// TestArenaLabels: the label sets a decoder with a Known writes into its
// arena are the labels.Labels a ScratchBuilder makes of the same labels,
// byte for byte (their hash too), with __name__ at each place and strings
// of every length form (255 bytes and more take four bytes of length);
// bytes taken back are written again by the next set.
func TestArenaLabels(t *testing.T) {
	if !arenaLabels {
		t.Log("this build keeps no label sets in an arena")
		return
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var a labelArena
	kept := map[int]labels.Labels{}
	want := map[int]labels.Labels{}
	for i := range 3000 {
		var pending []labels.Label
		for _, n := range []string{"a", "job", "zz"} {
			if rng.IntN(2) == 0 {
				pending = append(pending, labels.Label{Name: n, Value: strings.Repeat("v", rng.IntN(600))})
			}
		}
		name := fmt.Sprintf("m_%d", i)
		sb := labels.NewScratchBuilder(4)
		sb.Add(labels.MetricName, name)
		for _, l := range pending {
			if l.Value != "" {
				sb.Add(l.Name, l.Value)
			}
		}
		sb.Sort()
		pending = slices.DeleteFunc(pending, func(l labels.Label) bool { return l.Value == "" })
		got, n := a.appendSet(name, pending)
		w := sb.Labels()
		if !labels.Equal(got, w) || got.Hash() != w.Hash() || labelsData(got) != labelsData(w) {
			t.Fatalf("set %d: %q, want %q", i, labelsData(got), labelsData(w))
		}
		if rng.IntN(3) == 0 {
			a.takeBack(n)
			continue
		}
		kept[i], want[i] = got, w
	}
	for i, got := range kept {
		if labelsData(got) != labelsData(want[i]) {
			t.Fatalf("set %d changed after later sets: %q, want %q", i, labelsData(got), labelsData(want[i]))
		}
	}
}
