package query

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/ingest"
)

// BenchmarkRollupVsRaw runs a 30-day avg_over_time(gauge[1h]) at a 1 h step
// over raw data, over 1 h rollups, and over 1 h rollups with a late sample
// in the head under one of them (its day is rolled up again from raw data
// for that series), reporting latency, the samples the engine read, and
// the disk used by raw segments and by rollups.
// STRATA_BENCH_SERIES sets the number of series (default 200; the issue's
// figure uses 1000).
func BenchmarkRollupVsRaw(b *testing.B) {
	n := 200
	if v := os.Getenv("STRATA_BENCH_SERIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	e := newRollupEnv(b, n, 30)
	var raw, rollups int64
	for _, in := range e.set.Segments() {
		if in.Meta.Resolution == 0 {
			raw += in.Size
		} else {
			rollups += in.Size
		}
	}
	for _, c := range []struct {
		name string
		res  Resolution
		late bool // first write a late sample into a rolled-up day of one series
	}{{"raw", ResolutionRaw, false}, {"1h-rollups", ResolutionAuto, false}, {"1h-rollups-one-late-sample", ResolutionAuto, true}} {
		b.Run(c.name, func(b *testing.B) {
			if c.late {
				late := ingest.Series{Labels: labels.FromStrings("__name__", "gauge", "host", "h0"),
					Samples: []ingest.Sample{{T: e.end.Add(-10*24*time.Hour + 7*time.Second).UnixMilli(), V: 1}}}
				if err := e.store.Append(&ingest.Batch{Series: []ingest.Series{late}}); err != nil {
					b.Fatal(err)
				}
			}
			r := RangeQuery{Query: "avg_over_time(gauge[1h])", Start: e.end.Add(-29 * 24 * time.Hour), End: e.end, Step: time.Hour, MaxSourceResolution: c.res}
			res, err := e.eng.ChooseResolution(r.Query, r.Start, r.End, r.Step, c.res)
			if err != nil {
				b.Fatal(err)
			}
			qs, opts, err := e.eng.prepare(r.Query, res, false)
			if err != nil {
				b.Fatal(err)
			}
			var samples int64
			for b.Loop() {
				q, err := e.eng.engine.NewRangeQuery(context.Background(), e.q, opts, qs, r.Start, r.End, r.Step)
				if err != nil {
					b.Fatal(err)
				}
				out := q.Exec(context.Background())
				if out.Err != nil || len(out.Value.(promql.Matrix)) == 0 {
					b.Fatalf("%v", out.Err)
				}
				samples = q.Stats().Samples.TotalSamples
				q.Close()
			}
			b.ReportMetric(float64(samples), "samples-read")
			b.ReportMetric(float64(raw), "raw-bytes")
			b.ReportMetric(float64(raw+rollups)/float64(raw), "disk-ratio-raw+rollups/raw")
		})
	}
}

// BenchmarkRollupCounterPastRollups runs rate(requests_total[5m]) at a 5m
// step over 12 h that end 6 h past the 5m rollups (200 series, 10 s
// samples): the counter continues the last rolled-up day's level over raw
// data read from that day's start, and the Select judges every rolled-up
// day for late data.
func BenchmarkRollupCounterPastRollups(b *testing.B) {
	e := newRollupEnv(b, 400, 4) // 200 counters, 200 gauges
	r := RangeQuery{Query: "rate(requests_total[5m])", Start: e.end.Add(-6 * time.Hour), End: e.end.Add(6 * time.Hour), Step: 5 * time.Minute}
	for b.Loop() {
		out, err := e.eng.RangeAt(context.Background(), r, Resolution5m)
		if err != nil || len(out.Value.(promql.Matrix)) == 0 {
			b.Fatalf("%v", err)
		}
	}
}
