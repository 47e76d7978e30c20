package buffer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestSelectRefsAsSelect: SelectRefs and SelectLazy find the series Select
// finds; a series of SelectRefs has no labels until MakeLabels makes them
// (those of Select), LabelsSize tells their size before they are made,
// CompareSeries orders series of one head, or of two heads, as
// labels.Compare orders their labels, and for series of one head without
// making them (no allocation), and each Iterator reads the same samples.
func TestSelectRefsAsSelect(t *testing.T) {
	ctx := context.Background()
	heads := []*Head{newTestHead(t, Options{}), newTestHead(t, Options{})}
	// The second head learns the same label values in another order: its
	// symbols are numbered differently.
	for i, h := range heads {
		for j := range 6 {
			k := j
			if i == 1 {
				k = 5 - j
			}
			lset := labels.FromStrings("__name__", "sr", "job", fmt.Sprintf("j%d", k%3), "pod", fmt.Sprintf("p%d", k))
			if err := h.Append(batchOf(lset, ingest.Sample{T: int64(10 * k), V: float64(k)}, ingest.Sample{T: int64(10*k + 5), V: -float64(k)})); err != nil {
				t.Fatal(err)
			}
		}
	}
	name := labels.MustNewMatcher(labels.MatchEqual, "__name__", "sr")
	var all []Series
	for _, h := range heads {
		want, err := h.Select(ctx, true, 0, 100, name)
		if err != nil {
			t.Fatal(err)
		}
		refs, err := h.SelectRefs(ctx, 0, 100, name)
		if err != nil {
			t.Fatal(err)
		}
		lazy, err := h.SelectLazy(ctx, 0, 100, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != len(want) || len(lazy) != len(want) || len(want) != 6 {
			t.Fatalf("SelectRefs %d series, SelectLazy %d, Select %d; want 6", len(refs), len(lazy), len(want))
		}
		slices.SortFunc(refs, CompareSeries)
		slices.SortFunc(lazy, CompareSeries)
		for i := range want {
			r := refs[i]
			if !r.Labels.IsEmpty() {
				t.Fatalf("a series of SelectRefs has labels %s before MakeLabels", r.Labels)
			}
			size := r.LabelsSize()
			if got := r.MakeLabels(); !labels.Equal(got, want[i].Labels) || !labels.Equal(r.Labels, got) {
				t.Fatalf("series %d of SelectRefs in order: MakeLabels %s (Labels %s), want %s", i, got, r.Labels, want[i].Labels)
			}
			// (Exactly the size where a labels.Labels is its encoding.)
			if (labelsAreData && size != int(r.Labels.ByteSize())) || size != r.LabelsSize() || size == 0 {
				t.Fatalf("%s: LabelsSize %d before MakeLabels, %d after; ByteSize %d", r.Labels, size, r.LabelsSize(), r.Labels.ByteSize())
			}
			if !labels.Equal(lazy[i].Labels, want[i].Labels) {
				t.Fatalf("series %d of SelectLazy in order: %s, want %s", i, lazy[i].Labels, want[i].Labels)
			}
			w := drain(t, want[i].Iterator())
			if got := drain(t, r.Iterator()); !samplesEqual(got, w) || len(w) != 2 {
				t.Fatalf("%s: SelectRefs reads %v, Select %v", r.Labels, got, w)
			}
			if got := drain(t, lazy[i].Iterator()); !samplesEqual(got, w) {
				t.Fatalf("%s: SelectLazy reads %v, Select %v", r.Labels, got, w)
			}
		}
		// Series of one head are compared where the head keeps their
		// labels: nothing is made.
		fresh, err := h.SelectRefs(ctx, 0, 100, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() { CompareSeries(fresh[0], fresh[1]) }); n != 0 {
			t.Errorf("CompareSeries of two series of one head: %v allocations, want 0", n)
		}
		all = append(all, fresh...)
	}
	// Series of both heads, in one order.
	slices.SortFunc(all, CompareSeries)
	for i := 1; i < len(all); i++ {
		if c := labels.Compare(all[i-1].MakeLabels(), all[i].MakeLabels()); c > 0 {
			t.Fatalf("series of two heads sorted by CompareSeries: %s before %s", all[i-1].Labels, all[i].Labels)
		}
	}
}

// TestHeadReadsCanceled: a listing of the head stops with the context's
// error, checked before the first series and then every 1024 series;
// LabelNames with matchers lists the names of the series matched only.
func TestHeadReadsCanceled(t *testing.T) {
	h := newTestHead(t, Options{})
	b := &ingest.Batch{}
	for i := range 2000 {
		lset := labels.FromStrings("__name__", "cx", "i", fmt.Sprint(i))
		if i == 0 {
			lset = labels.FromStrings("__name__", "cx", "i", "0", "only", "x")
		}
		b.Series = append(b.Series, ingest.Series{Labels: lset, Samples: []ingest.Sample{{T: 1, V: 1}}})
	}
	if err := h.Append(b); err != nil {
		t.Fatal(err)
	}
	only := labels.MustNewMatcher(labels.MatchEqual, "only", "x")
	all := labels.MustNewMatcher(labels.MatchEqual, "__name__", "cx")
	if names, err := h.LabelNames(context.Background(), 0, 10, only); err != nil || !slices.Equal(names, []string{"__name__", "i", "only"}) {
		t.Fatalf("LabelNames of {only=\"x\"}: %q, %v", names, err)
	}
	if names, err := h.LabelNames(context.Background(), 0, 10); err != nil || !slices.Equal(names, []string{"__name__", "i", "only"}) {
		t.Fatalf("LabelNames: %q, %v", names, err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for what, call := range map[string]func(ctx context.Context, m *labels.Matcher) error{
		"SelectRefs": func(ctx context.Context, m *labels.Matcher) error { _, err := h.SelectRefs(ctx, 0, 10, m); return err },
		"SelectLazy": func(ctx context.Context, m *labels.Matcher) error { _, err := h.SelectLazy(ctx, 0, 10, m); return err },
		"Select": func(ctx context.Context, m *labels.Matcher) error {
			_, err := h.Select(ctx, false, 0, 10, m)
			return err
		},
		"LabelNames": func(ctx context.Context, m *labels.Matcher) error { _, err := h.LabelNames(ctx, 0, 10, m); return err },
		"LabelValues": func(ctx context.Context, m *labels.Matcher) error {
			_, err := h.LabelValues(ctx, "i", 0, 10, m)
			return err
		},
	} {
		// Canceled before the call: one series matched is enough.
		if err := call(canceled, only); !errors.Is(err, context.Canceled) {
			t.Errorf("%s of one series with a canceled context: %v", what, err)
		}
		// Canceled once the listing has started: it stops at series 1024.
		ctx := &cancelAfter{Context: context.Background(), checks: 1}
		if err := call(ctx, all); !errors.Is(err, context.Canceled) {
			t.Errorf("%s of 2000 series, canceled after its first check: %v", what, err)
		}
	}
}

// cancelAfter is a context whose Err reports it canceled from the call
// after its first checks calls: canceled while a loop runs, deterministically.
type cancelAfter struct {
	context.Context
	checks int64
	calls  atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.checks {
		return context.Canceled
	}
	return nil
}
