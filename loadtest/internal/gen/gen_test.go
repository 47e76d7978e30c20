package gen

import (
	"math"
	"slices"
	"testing"
	"time"
)

func newTestGen(t *testing.T, o Options) *Generator {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func backfill(steps, batch, perSeries int) Schedule {
	return Schedule{Start: time.Unix(1_700_000_000, 0), Interval: 10 * time.Second, Steps: steps, BatchSamples: batch, SamplesPerSeries: perSeries}
}

// collect runs every shard of g and returns each series' samples, keyed by
// its label set, in time order.
func collect(t *testing.T, g *Generator, shards int, sch Schedule) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	lastTime := map[string]int64{}
	for sh := range shards {
		s, err := g.Stream(sh, shards, sch)
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		for s.Next(&b) {
			for i, gr := range b.Groups {
				for f := range gr.Family.Fields {
					key := labelKey(gr.SeriesLabels(f))
					for ti, ts := range b.Times {
						if ts <= lastTime[key] {
							t.Fatalf("%s: timestamp %d after %d", key, ts, lastTime[key])
						}
						lastTime[key] = ts
						out[key] = append(out[key], b.Value(i, f, ti))
					}
				}
			}
		}
	}
	return out
}

func labelKey(ls []Label) string {
	var s string
	for _, l := range ls {
		s += l.Name + "=" + l.Value + ","
	}
	return s
}

func TestLabels(t *testing.T) {
	g := newTestGen(t, Options{Hosts: 30, Seed: 7})
	if got, want := g.NumSeries(), 30*(10+7+2*4+2*4); got != want {
		t.Fatalf("series: got %d, want %d", got, want)
	}
	seen := map[string]bool{}
	regions := map[string]bool{}
	for _, gr := range g.Groups() {
		for f := range gr.Family.Fields {
			ls := gr.SeriesLabels(f)
			if ls[0].Name != "__name__" || ls[0].Value != gr.Family.Name+"_"+gr.Family.Fields[f].Name {
				t.Fatalf("first label %v", ls[0])
			}
			if !slices.IsSortedFunc(ls, func(a, b Label) int { return cmpStr(a.Name, b.Name) }) {
				t.Fatalf("labels not sorted: %v", ls)
			}
			want := 1 + len(HostLabelNames)
			if gr.Family.InstanceLabel != "" {
				want++
			}
			if len(ls) != want {
				t.Fatalf("%v: %d labels, want %d", ls, len(ls), want)
			}
			for _, l := range ls {
				if l.Value == "" {
					t.Fatalf("%v: empty label %s", ls, l.Name)
				}
				if l.Name == "region" {
					regions[l.Value] = true
				}
			}
			k := labelKey(ls)
			if seen[k] {
				t.Fatalf("duplicate series %s", k)
			}
			seen[k] = true
		}
	}
	if len(regions) < 3 {
		t.Fatalf("only %d regions over 30 hosts", len(regions))
	}
	h := g.Hosts()[3]
	if h.Name != "host_3" || h.Datacenter[:len(h.Region)] != h.Region {
		t.Fatalf("host 3: %+v", h)
	}
	// Hosts(m) is a prefix of Hosts(n).
	if !slices.Equal(Hosts(10, 7), g.Hosts()[:10]) {
		t.Fatal("Hosts(10) is not a prefix of Hosts(30)")
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDeterminism(t *testing.T) {
	o := Options{Hosts: 7, Seed: 42, ResetProbability: 0.01}
	// Same seed, different batching and sharding: same series.
	a := collect(t, newTestGen(t, o), 1, backfill(50, 1000, 0))
	b := collect(t, newTestGen(t, o), 3, backfill(50, 77, 0))
	c := collect(t, newTestGen(t, o), 4, backfill(50, 500, 3))
	if len(a) != newTestGen(t, o).NumSeries() {
		t.Fatalf("got %d series", len(a))
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) || !slices.Equal(va, c[k]) {
			t.Fatalf("%s differs between batchings:\n%v\n%v\n%v", k, va[:5], b[k][:5], c[k][:5])
		}
	}
	// A family's values do not depend on which other families are chosen.
	o2 := o
	o2.Families = []string{"net"}
	d := collect(t, newTestGen(t, o2), 2, backfill(50, 100, 0))
	for k, vd := range d {
		if !slices.Equal(vd, a[k]) {
			t.Fatalf("%s differs when generated alone", k)
		}
	}
	// Another seed gives other values.
	o3 := o
	o3.Seed = 43
	e := collect(t, newTestGen(t, o3), 1, backfill(50, 1000, 0))
	same := 0
	for k, va := range a {
		if slices.Equal(va, e[k]) {
			same++
		}
	}
	if same > len(a)/10 { // mem_total is constant per host and may coincide
		t.Fatalf("%d of %d series identical with another seed", same, len(a))
	}
}

func TestCounterResets(t *testing.T) {
	f := func(p float64, wantResets bool) {
		t.Helper()
		g := newTestGen(t, Options{Hosts: 20, Seed: 3, Families: []string{"diskio", "net"}, ResetProbability: p})
		const steps = 300
		s, err := g.Stream(0, 1, backfill(steps, 1_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		if !s.Next(&b) || len(b.Times) != steps {
			t.Fatalf("want one batch of %d steps", steps)
		}
		resetsAt := map[int]map[int]int{} // host → step → decreasing counters
		counters := map[int]int{}         // host → number of counters
		for i, gr := range b.Groups {
			for fi, fld := range gr.Family.Fields {
				if fld.Kind != Counter || !fld.Integer {
					t.Fatalf("%s: want an integer counter", gr.Family.SeriesName(fi))
				}
				counters[gr.HostIdx]++
				for ti := 1; ti < steps; ti++ {
					prev, cur := b.Value(i, fi, ti-1), b.Value(i, fi, ti)
					if cur != math.Trunc(cur) || cur < 0 {
						t.Fatalf("counter value %v", cur)
					}
					if cur < prev {
						if resetsAt[gr.HostIdx] == nil {
							resetsAt[gr.HostIdx] = map[int]int{}
						}
						resetsAt[gr.HostIdx][ti]++
					}
				}
			}
		}
		n := 0
		for h, steps := range resetsAt {
			for step, c := range steps {
				n++
				if !g.rebooted(h, step) {
					t.Fatalf("host %d: %d counters decreased at step %d without a reboot", h, c, step)
				}
			}
		}
		// Every reboot shows: the host's counters restart together (some
		// may not decrease, when they were still small from a previous
		// reboot, so at least one does).
		reboots := 0
		for h := range counters {
			for step := 1; step < steps; step++ {
				if g.rebooted(h, step) {
					reboots++
					if resetsAt[h][step] == 0 {
						t.Fatalf("host %d rebooted at step %d and no counter decreased", h, step)
					}
				}
			}
		}
		if n != reboots {
			t.Fatalf("%d resets seen, %d reboots", n, reboots)
		}
		if wantResets != (n > 0) {
			t.Fatalf("p=%g: %d resets", p, n)
		}
	}
	f(0, false)
	f(0.01, true)
}

func TestGaugesAreBoundedRandomWalks(t *testing.T) {
	g := newTestGen(t, Options{Hosts: 10, Seed: 5, Families: []string{"cpu", "mem"}})
	const steps = 500
	s, _ := g.Stream(0, 1, backfill(steps, 1_000_000, 0))
	var b Batch
	s.Next(&b)
	for i, gr := range b.Groups {
		for ti := range steps {
			switch gr.Family.Name {
			case "cpu":
				sum := 0.0
				for f := range gr.Family.Fields {
					v := b.Value(i, f, ti)
					if v < 0 || v > 100 {
						t.Fatalf("cpu %s = %v", gr.Family.Fields[f].Name, v)
					}
					sum += v
				}
				if math.Abs(sum-100) > 1e-6 {
					t.Fatalf("cpu fields sum to %v", sum)
				}
			case "mem":
				total, used, free := b.Value(i, 0, ti), b.Value(i, 2, ti), b.Value(i, 3, ti)
				if used <= 0 || used > total || free < 0 || used+free > total {
					t.Fatalf("mem total %v used %v free %v", total, used, free)
				}
			}
		}
		// A random walk: it moves, and its steps are small next to its
		// spread (white noise would have steps as large as its spread).
		for f, fld := range gr.Family.Fields {
			if fld.Name == "total" || fld.Name == "usage_guest" || fld.Name == "usage_guest_nice" {
				continue
			}
			var diff, lo, hi = 0.0, math.Inf(1), math.Inf(-1)
			distinct := map[float64]bool{}
			for ti := range steps {
				v := b.Value(i, f, ti)
				distinct[v] = true
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				if ti > 0 {
					diff += math.Abs(v - b.Value(i, f, ti-1))
				}
			}
			if len(distinct) < 10 {
				t.Fatalf("%s on %s: only %d distinct values", gr.Family.SeriesName(f), gr.Host.Name, len(distinct))
			}
			if mean := diff / (steps - 1); mean > (hi-lo)/3 {
				t.Fatalf("%s: mean step %v over a range of %v: noise, not a walk", gr.Family.SeriesName(f), mean, hi-lo)
			}
		}
	}
}

// TestIntegerGauges checks every generated cpu value is whole with
// IntegerGauges, and that the same stream without it is not, so that the
// check can tell the two apart.
func TestIntegerGauges(t *testing.T) {
	count := func(integer bool) (values, whole int64) {
		t.Helper()
		g := newTestGen(t, Options{Hosts: 3, Seed: 1, Families: []string{"cpu"}, IntegerGauges: integer})
		s, err := g.Stream(0, 1, backfill(100, 10_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		for s.Next(&b) {
			for _, v := range b.Values {
				values++
				if v == math.Trunc(v) {
					whole++
				}
			}
		}
		if values != s.Total() || values == 0 {
			t.Fatalf("checked %d values, the stream holds %d", values, s.Total())
		}
		return values, whole
	}
	if values, whole := count(true); whole != values {
		t.Fatalf("with IntegerGauges %d of %d cpu values are not whole", values-whole, values)
	}
	if values, whole := count(false); whole == values {
		t.Fatalf("without IntegerGauges all %d cpu values are whole too: the test cannot tell", values)
	}
}

func TestBatching(t *testing.T) {
	g := newTestGen(t, Options{Hosts: 200, Seed: 1, Families: []string{"cpu"}})
	// The TARGETS scenario: 2,000 series, 4 writers, 10,000 samples a request.
	var total int64
	for sh := range 4 {
		s, err := g.Stream(sh, 4, backfill(4320, 10_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		if s.NumSeries() != 500 || s.Total() != 500*4320 {
			t.Fatalf("shard %d: %d series, total %d", sh, s.NumSeries(), s.Total())
		}
		var b Batch
		for s.Next(&b) {
			if b.Samples() != 10_000 && b.FirstStep+len(b.Times) != 4320 {
				t.Fatalf("batch of %d samples at step %d", b.Samples(), b.FirstStep)
			}
			total += int64(b.Samples())
		}
	}
	if total != 8_640_000 {
		t.Fatalf("total %d samples", total)
	}

	// More series than a batch holds: one step, groups split across batches.
	s, _ := g.Stream(0, 1, backfill(2, 95, 0))
	var b Batch
	var batches, samples int
	for s.Next(&b) {
		batches++
		samples += b.Samples()
		if b.Samples() > 95 || len(b.Times) != 1 {
			t.Fatalf("batch %d: %d samples over %d steps", batches, b.Samples(), len(b.Times))
		}
	}
	if samples != 2*2000 || batches != 2*(200/9+1) {
		t.Fatalf("%d samples in %d batches", samples, batches)
	}
}

func TestLiveClock(t *testing.T) {
	g := newTestGen(t, Options{Hosts: 2, Seed: 1, Families: []string{"cpu"}})
	now := time.Unix(1_700_000_000, 0)
	sch := Schedule{Interval: 10 * time.Second, Steps: 6, BatchSamples: 40, Clock: func() time.Time { return now }}
	s, _ := g.Stream(0, 1, sch)
	var b Batch
	var times []int64
	for s.Next(&b) {
		times = append(times, b.Times...)
		now = now.Add(5 * time.Second)
	}
	want := []int64{1_700_000_000_000, 1_700_000_000_001, 1_700_000_005_000, 1_700_000_005_001, 1_700_000_010_000, 1_700_000_010_001}
	if !slices.Equal(times, want) {
		t.Fatalf("times %v, want %v", times, want)
	}
}

func BenchmarkStream(b *testing.B) {
	g, _ := New(Options{Hosts: 200, Seed: 1})
	s, _ := g.Stream(0, 1, backfill(0, 10_000, 0))
	var batch Batch
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s.Next(&batch)
		n += batch.Samples()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
