package query

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

func TestParseWarmQueries(t *testing.T) {
	qs, err := ParseWarmQueries("24h:1m:sum(rate(x[5m])); 1h:15s:up\n")
	if err != nil || len(qs) != 2 || qs[0] != (WarmQuery{Query: "sum(rate(x[5m]))", Range: 24 * time.Hour, Step: time.Minute}) || qs[1].Query != "up" {
		t.Fatalf("%+v %v", qs, err)
	}
	for _, bad := range []string{"24h:sum(x)", "x:1m:up", "1h:0s:up"} {
		if _, err := ParseWarmQueries(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestWarmerKeepsDashboardWarm warms a query, invalidates it with a late
// write, and checks the warmer is kicked and makes it a hit again.
func TestWarmerKeepsDashboardWarm(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	s := ingest.Series{Labels: labels.FromStrings("__name__", "x")}
	for ts := now.Add(-3 * time.Hour); ts.Before(now); ts = ts.Add(time.Minute) {
		s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: 1})
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{s}})
	wq := WarmQuery{Query: "sum(x)", Range: 2 * time.Hour, Step: time.Minute}
	w := NewWarmer(slog.New(slog.DiscardHandler), e.frontend, []WarmQuery{wq}, 0)
	kicked := 0
	e.frontend.OnInvalidate = func() { kicked++; w.Kick() }
	ask := func() CacheStatus {
		t.Helper()
		end := e.clock.Now().Truncate(wq.Step)
		res, err := e.frontend.Range(context.Background(), RangeQuery{Query: wq.Query, Start: end.Add(-wq.Range), End: end, Step: wq.Step}, false)
		if err != nil {
			t.Fatal(err)
		}
		return res.Cache
	}
	if n := w.WarmOnce(context.Background()); n != 1 {
		t.Fatalf("warmed %d queries", n)
	}
	if st := ask(); st != CachePartial { // all cached but the fresh last minute
		t.Fatalf("after warming: %s", st)
	}
	e.write(t, &ingest.Batch{Series: []ingest.Series{{Labels: labels.FromStrings("__name__", "x"), Samples: []ingest.Sample{{T: now.Add(-90 * time.Minute).UnixMilli(), V: 5}}}}})
	if kicked != 1 {
		t.Fatalf("OnInvalidate called %d times, want 1", kicked)
	}
	select {
	case <-w.kick:
	default:
		t.Fatal("the warmer was not kicked")
	}
	w.WarmOnce(context.Background())
	if st := ask(); st != CachePartial {
		t.Fatalf("after rewarming: %s, want partial (only the fresh minute computed)", st)
	}
}
