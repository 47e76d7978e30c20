package query

import "testing"

// TestRewriteForRollup pins how binary, unary and parameterised
// aggregation expressions are rewritten for 1 h rollups: every operand is
// rewritten, and one operand that rollups cannot answer (a 7 m window is
// not a whole number of buckets) makes the whole query read raw data.
// TestRollupEquivalence checks that the rewritten forms answer as raw
// data does.
func TestRewriteForRollup(t *testing.T) {
	tag := func(agg string) string {
		return resolutionLabel + `="3600000",` + rollupLabel + `="` + agg + `"`
	}
	f := func(q, want string) {
		t.Helper()
		expr, err := copyParser.ParseExpr(q)
		if err != nil {
			t.Fatal(err)
		}
		before := expr.String()
		out, ok := rewriteForRollup(expr, int64(Resolution1h))
		if expr.String() != before {
			t.Errorf("%s: rewriting modified the input to %s", q, expr)
		}
		if want == "" {
			if ok {
				t.Errorf("%s: rewritten to %s, want it left to raw data", q, out)
			}
			return
		}
		if !ok {
			t.Fatalf("%s: not rewritable, want %s", q, want)
		}
		if got := out.String(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", q, got, want)
		}
	}
	f(`max_over_time(a[1h]) / min_over_time(b[1h])`,
		`max_over_time(a{`+tag("max")+`}[1h]) / min_over_time(b{`+tag("min")+`}[1h])`)
	f(`a / avg_over_time(b[1h])`,
		`a{`+tag("avg")+`} / (sum_over_time(b{`+tag("sum")+`}[1h]) / sum_over_time(b{`+tag("count")+`}[1h]))`)
	f(`-avg_over_time(x[1h])`,
		`-(sum_over_time(x{`+tag("sum")+`}[1h]) / sum_over_time(x{`+tag("count")+`}[1h]))`)
	// increase becomes a product: a parenthesised one, since the rewritten
	// query is handed to the engine as text.
	f(`1 / increase(x[1h])`,
		`1 / (rate(x{`+tag("counter")+`}[2h]) * 3600)`)
	f(`topk(3, rate(x[1h]))`,
		`topk(3, rate(x{`+tag("counter")+`}[2h]))`)
	f(`quantile(0.9, max_over_time(x[1h]))`,
		`quantile(0.9, max_over_time(x{`+tag("max")+`}[1h]))`)
	f(`topk(scalar(avg_over_time(n[1h])), x)`,
		`topk(scalar((sum_over_time(n{`+tag("sum")+`}[1h]) / sum_over_time(n{`+tag("count")+`}[1h]))), x{`+tag("avg")+`})`)
	// All or nothing.
	f(`max_over_time(a[1h]) / max_over_time(b[7m])`, "")
	f(`max_over_time(a[7m]) / max_over_time(b[1h])`, "")
	f(`-max_over_time(x[7m])`, "")
	f(`topk(3, rate(x[7m]))`, "")
	f(`quantile(scalar(max_over_time(q[7m])), max_over_time(x[1h]))`, "")
	f(`max_over_time(a[1h:5m])`, "") // subquery
}
