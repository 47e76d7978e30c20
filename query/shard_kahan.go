package query

// sum_over_time and avg_over_time of floats, as Prometheus computes them
// (promql/functions.go, funcSumOverTime and funcAvgOverTime, v0.315), in
// loops the compiler inlines: Prometheus' own functions add each sample
// through kahansum.Inc, a call per sample, which costs about as much as
// decoding the sample. The arithmetic is the same, operation for
// operation and in the same order, with the same explicit float64
// conversions (which keep the compiler from fusing operations across
// them), so the results are the same bits; TestKahanEqualsPrometheus
// checks them against Prometheus' functions on random windows with NaN,
// infinities, -0 and sums that overflow, and the differential tests of
// the direct path check them against the engine.

import (
	"math"

	"github.com/prometheus/prometheus/promql"
)

// floatFuncs are the range functions of shard_kahan.go, by name.
var floatFuncs = map[string]func([]promql.FPoint) float64{
	"sum_over_time": sumOverTime,
	"avg_over_time": avgOverTime,
}

// kahanInc is kahansum.Inc.
func kahanInc(inc, sum, c float64) (newSum, newC float64) {
	inc = float64(inc)
	sum = float64(sum)
	c = float64(c)

	t := sum + inc
	switch {
	case t > math.MaxFloat64 || t < -math.MaxFloat64:
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}

	t = float64(t)
	c = float64(c)
	return t, c
}

// sumOverTime is sum_over_time of a window of floats.
func sumOverTime(win []promql.FPoint) float64 {
	var sum, c float64
	for _, f := range win {
		// kahanInc(f.F, sum, c), by hand: the compiler does not inline it.
		inc := float64(f.F)
		t := sum + inc
		switch {
		case t > math.MaxFloat64 || t < -math.MaxFloat64:
			c = 0
		case math.Abs(sum) >= math.Abs(inc):
			c += (sum - t) + inc
		default:
			c += (inc - t) + sum
		}
		sum, c = float64(t), float64(c)
	}
	if math.IsInf(sum, 0) {
		return sum
	}
	return sum + c
}

// avgOverTime is avg_over_time of a non-empty window of floats: the
// compensated sum divided by the count, and the incremental mean from
// the sample on which the sum would overflow.
func avgOverTime(win []promql.FPoint) float64 {
	var (
		sum, count      = win[0].F, 1.
		mean, kahanC    float64
		incrementalMean bool
	)
	for i, f := range win[1:] {
		count = float64(i + 2)
		if !incrementalMean {
			// kahanInc(f.F, sum, kahanC), by hand: the compiler does not
			// inline it.
			inc := float64(f.F)
			newSum, newC := sum+inc, kahanC
			switch {
			case newSum > math.MaxFloat64 || newSum < -math.MaxFloat64:
				newC = 0
			case math.Abs(sum) >= math.Abs(inc):
				newC += (sum - newSum) + inc
			default:
				newC += (inc - newSum) + sum
			}
			newSum, newC = float64(newSum), float64(newC)
			if !math.IsInf(newSum, 0) {
				sum, kahanC = newSum, newC
				continue
			}
			incrementalMean = true
			mean = sum / (count - 1)
			kahanC /= (count - 1)
		}
		q := (count - 1) / count
		mean, kahanC = kahanInc(f.F/count, q*mean, q*kahanC)
	}
	if incrementalMean {
		return mean + kahanC
	}
	return sum/count + kahanC/count
}
