package gen

import (
	"math"
	"math/rand/v2"
)

// Histogram is one native histogram sample of a NativeHistogram field: a counter
// histogram of exponential schema with integer counts, its populated
// buckets in one span. Writers reuse it: Stream.Next overwrites it.
type Histogram struct {
	Schema        int32
	ZeroThreshold float64
	Count         uint64
	Sum           float64
	// Offset is the index of the first bucket of Buckets: bucket i counts
	// the observations in (2^((i-1)/2^Schema), 2^(i/2^Schema)].
	Offset int32
	// Buckets are absolute counts (not deltas), empty buckets included.
	Buckets []uint64
}

// The latency histogram's layout: schema 3 (8 buckets per doubling, each
// 9% wider than the previous), buckets from 1 ms to 16 s, the zero
// threshold client_golang uses.
const (
	latencySchema = 3
	latencyLo     = -80 // 2^(-80/8) s ≈ 1 ms
	latencyHi     = 32  // 2^(32/8) s = 16 s
	latencyN      = latencyHi - latencyLo + 1
	// state: log median, its mean, log request rate, its mean, count, sum,
	// then the cumulative count of each bucket from latencyLo.
	latencyState = 6
)

// latencyLogBound[i] is the natural log of bucket latencyLo+i's upper bound.
var latencyLogBound = func() (b [latencyN]float64) {
	for i := range b {
		b[i] = float64(latencyLo+i) / (1 << latencySchema) * math.Ln2
	}
	return b
}()

// http: request latency per host and route, as client_golang's native
// histograms export it (NativeHistogramBucketFactor 1.1, schema 3). Each
// route has its own log-normal latency whose median wanders (30 ms … 1 s)
// and its own request rate (about 2 … 200 requests a second); every step
// adds the step's requests to the buckets, drawn from the distribution
// with randomized rounding, so the populated buckets (about 40 to 55 after
// a day) widen as rare slow requests come in. A reboot restarts the counts.
var httpFamily = &Family{
	Name:          "http",
	Fields:        []Field{{Name: "request_duration_seconds", Kind: NativeHistogram}},
	InstanceLabel: "route",
	Instances:     []string{"/", "/api/v1/query", "/api/v1/write", "/login"},
	stateLen:      latencyState + latencyN,
	init: func(r *rand.Rand, st []float64) {
		st[1] = math.Log(0.03) + r.Float64()*math.Log(10) // median 30 ms … 300 ms
		st[0] = st[1]
		st[3] = math.Log(2) + r.Float64()*math.Log(100) // 2 … 200 requests/s
		st[2] = st[3]
	},
	histStep: func(r *rand.Rand, st []float64, dt float64, reset bool, out *Histogram) {
		counts := st[latencyState:]
		if reset {
			st[4], st[5] = 0, 0
			clear(counts)
		}
		st[0] = clamp(ou(r, st[0], st[1], 0.05, 0.05), math.Log(0.03), 0)
		st[2] = ou(r, st[2], st[3], 0.05, 0.1)
		n := math.Exp(st[2]) * dt // requests this step
		const sigma = 0.4
		prev := 0.0 // CDF at the previous bound
		for i, lb := range latencyLogBound {
			cdf := 0.5 * math.Erfc(-(lb-st[0])/(sigma*math.Sqrt2))
			if i == latencyN-1 {
				cdf = 1 // the last bucket takes the slowest requests
			}
			d := math.Floor(n*(cdf-prev) + r.Float64())
			prev = cdf
			if d == 0 {
				continue
			}
			counts[i] += d
			st[4] += d
			// The observations sit at the bucket's geometric middle.
			st[5] += d * math.Exp(lb-math.Ln2/(2<<latencySchema))
		}
		out.Schema, out.ZeroThreshold = latencySchema, math.Ldexp(1, -128)
		out.Count, out.Sum = uint64(st[4]), st[5]
		first, last := -1, -1
		for i, c := range counts {
			if c > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		out.Buckets = out.Buckets[:0]
		out.Offset = 0
		if first < 0 {
			return
		}
		out.Offset = int32(latencyLo + first)
		for _, c := range counts[first : last+1] {
			out.Buckets = append(out.Buckets, uint64(c))
		}
	},
}
