package gen

import (
	"slices"
	"testing"
)

// TestLatencyHistograms checks the http family over a day of 10 s steps on
// a few hosts: every histogram is consistent (its buckets add up to its
// count, its mean lies within the bucket range), counts only grow between
// reboots, the populated buckets are as many as a real latency histogram
// has, and the values do not depend on how the stream is batched.
func TestLatencyHistograms(t *testing.T) {
	o := Options{Hosts: 3, Seed: 7, Families: []string{"http"}, ResetProbability: 2e-4}
	g := newTestGen(t, o)
	if g.NumSeries() != 3*4 {
		t.Fatalf("%d series, want 12", g.NumSeries())
	}
	const steps = 8640
	type state struct {
		count   uint64
		buckets map[int32]uint64
	}
	last := map[*Group]*state{}
	var resets, samples int
	var widths []int
	s, err := g.Stream(0, 1, backfill(steps, 500, 0))
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	for s.Next(&b) {
		if len(b.Hists) != len(b.Values) {
			t.Fatalf("%d histograms for %d values", len(b.Hists), len(b.Values))
		}
		for i, gr := range b.Groups {
			st := last[gr]
			if st == nil {
				st = &state{buckets: map[int32]uint64{}}
				last[gr] = st
			}
			for ti := range b.Times {
				h := b.Hists[b.Offsets[i]+ti]
				samples++
				var sum uint64
				for _, c := range h.Buckets {
					sum += c
				}
				if sum != h.Count || float64(h.Count) != b.Value(i, 0, ti) || h.Schema != 3 {
					t.Fatalf("%s step %d: buckets add up to %d, count %d, value %v, schema %d", gr.Family.Name, b.FirstStep+ti, sum, h.Count, b.Value(i, 0, ti), h.Schema)
				}
				if len(h.Buckets) > 0 && (h.Buckets[0] == 0 || h.Buckets[len(h.Buckets)-1] == 0) {
					t.Fatalf("step %d: the span starts or ends with an empty bucket: %v", b.FirstStep+ti, h.Buckets)
				}
				if h.Count > 0 {
					if mean := h.Sum / float64(h.Count); mean < 0.001 || mean > 16 {
						t.Fatalf("step %d: mean latency %v s", b.FirstStep+ti, mean)
					}
				}
				reset := h.Count < st.count
				for k, c := range h.Buckets {
					idx := h.Offset + int32(k)
					if !reset && c < st.buckets[idx] {
						t.Fatalf("step %d: bucket %d fell from %d to %d without a reboot", b.FirstStep+ti, idx, st.buckets[idx], c)
					}
				}
				if reset {
					resets++
				}
				clear(st.buckets)
				for k, c := range h.Buckets {
					st.buckets[h.Offset+int32(k)] = c
				}
				st.count = h.Count
				if b.FirstStep+ti == steps-1 {
					widths = append(widths, len(h.Buckets))
				}
			}
		}
	}
	if samples != steps*12 || len(widths) != 12 {
		t.Fatalf("%d histograms, %d series at the end", samples, len(widths))
	}
	if resets == 0 {
		t.Error("no reboot in a day of 3 hosts at 2e-4 per step")
	}
	slices.Sort(widths)
	if widths[0] < 15 || widths[len(widths)-1] > 80 {
		t.Errorf("populated buckets after a day: %v, want 15 … 80", widths)
	}
	t.Logf("populated buckets after a day: %v; %d reboots", widths, resets)

	// The same values however the stream is cut.
	a := collect(t, newTestGen(t, o), 1, backfill(300, 50, 0))
	c := collect(t, newTestGen(t, o), 3, backfill(300, 7, 1))
	for k, v := range a {
		if !slices.Equal(v, c[k]) {
			t.Fatalf("%s: values depend on batching", k)
		}
	}
}
