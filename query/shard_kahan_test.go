package query

import (
	"math"
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// TestKahanEqualsPrometheus: sumOverTime and avgOverTime give, bit for bit,
// what Prometheus' sum_over_time and avg_over_time give, on random windows
// of small and huge values of both signs, fractions, integers, -0, NaN and
// infinities, and sums that overflow (avg_over_time's incremental mean).
func TestKahanEqualsPrometheus(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	args := parser.Expressions{&parser.MatrixSelector{VectorSelector: &parser.VectorSelector{Name: "x"}}}
	value := func(kind int) float64 {
		switch kind {
		case 0:
			return rng.Float64() * 100
		case 1:
			return float64(rng.Intn(200) - 100)
		case 2:
			return rng.NormFloat64() * 1e308 // sums overflow
		case 3:
			return rng.NormFloat64() * math.Pow(10, float64(rng.Intn(40)-20))
		case 4:
			return math.Float64frombits(rng.Uint64())
		}
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.MaxFloat64, -math.MaxFloat64, 1e-310}[rng.Intn(8)]
	}
	for i := range 20000 {
		win := make([]promql.FPoint, 1+rng.Intn(400))
		mix := rng.Intn(6)
		for k := range win {
			kind := mix
			if mix == 5 || rng.Intn(50) == 0 {
				kind = rng.Intn(6)
			}
			win[k] = promql.FPoint{T: int64(k), F: value(kind)}
		}
		for name, got := range map[string]float64{"sum_over_time": sumOverTime(win), "avg_over_time": avgOverTime(win)} {
			enh := &promql.EvalNodeHelper{}
			vec, _ := promql.FunctionCalls[name](nil, promql.Matrix{{Metric: labels.EmptyLabels(), Floats: win}}, args, enh)
			if len(vec) != 1 {
				t.Fatalf("%s: %d samples", name, len(vec))
			}
			// NaN is NaN: which NaN an addition of two gives depends on
			// the order the compiler puts the operands in, and no answer
			// shows it (the API writes "NaN"; PromQL tests NaN by
			// math.IsNaN).
			if math.Float64bits(got) != math.Float64bits(vec[0].F) && !(math.IsNaN(got) && math.IsNaN(vec[0].F)) {
				t.Fatalf("window %d (%d samples, mix %d): %s %v (%x), Prometheus' %v (%x)", i, len(win), mix, name, got, math.Float64bits(got), vec[0].F, math.Float64bits(vec[0].F))
			}
		}
	}
}
