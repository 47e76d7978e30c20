package query

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/ingest"
)

// TestInstantAnswersCached: an instant query's answer of each kind (a
// vector of floats, of histograms, a scalar, a matrix) is answered from
// the cache the second time, equal to a fresh one; a string is computed
// each time. A query reading data up to exactly the freshness cutoff is
// cached, one reading a millisecond past it is not. A query of any
// length is cached.
func TestInstantAnswersCached(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	b := gaugeBatch("iv", now.Add(-3*time.Hour), now, 10*time.Second)
	h := ingest.Series{Labels: labels.FromStrings("__name__", "ih", "host", "a")}
	for ts := now.Add(-3 * time.Hour); !ts.After(now); ts = ts.Add(time.Minute) {
		h.Histograms = append(h.Histograms, ingest.HistogramSample{T: ts.UnixMilli(), H: diffHistogram(int(ts.Unix() % 1000))})
	}
	b.Series = append(b.Series, h)
	e.write(t, b)
	ctx := context.Background()
	ask := func(qs string, ts time.Time) CacheStatus {
		t.Helper()
		cached, err := e.frontend.Instant(ctx, qs, ts, ResolutionAuto, false)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := e.frontend.Instant(ctx, qs, ts, ResolutionAuto, true)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%T", cached.Value) != fmt.Sprintf("%T", fresh.Value) {
			t.Fatalf("%s at %s: a %T through the cache (%s), a %T fresh", qs, ts, cached.Value, cached.Cache, fresh.Value)
		}
		if s, ok := fresh.Value.(promql.String); ok {
			if cached.Value.(promql.String) != s {
				t.Fatalf("%s: %v through the cache, %v fresh", qs, cached.Value, s)
			}
		} else {
			sameAnswer(t, qs, cached, fresh)
			if len(asMatrix(fresh.Value)) == 0 {
				t.Fatalf("%s at %s: an empty answer tests nothing", qs, ts)
			}
		}
		return cached.Cache
	}
	at := now.Add(-2 * time.Hour)
	for _, c := range []struct {
		qs          string
		first, then CacheStatus
	}{
		{`iv`, CacheMiss, CacheHit},
		{`ih`, CacheMiss, CacheHit},
		{`sum(iv)`, CacheMiss, CacheHit},
		{`scalar(sum(iv))`, CacheMiss, CacheHit},
		{`iv[5m]`, CacheMiss, CacheHit},
		{`"text"`, CacheMiss, CacheMiss},
		// A text longer than the keys' room for it.
		{strings.TrimSuffix(strings.Repeat("sum(iv) + ", 12), " + "), CacheMiss, CacheHit},
	} {
		if st := ask(c.qs, at); st != c.first {
			t.Errorf("%s: first answer %s, want %s", c.qs, st, c.first)
		}
		for i := range 2 {
			if st := ask(c.qs, at); st != c.then {
				t.Errorf("%s: answer %d %s, want %s", c.qs, i+2, st, c.then)
			}
		}
	}
	// Data up to the cutoff (the newest data FreshFrom leaves to
	// invalidation) is cached; a millisecond newer is not.
	cutoff := time.UnixMilli(e.frontend.FreshFrom() - 1)
	for _, c := range []struct {
		ts   time.Time
		want []CacheStatus
	}{
		{cutoff, []CacheStatus{CacheMiss, CacheHit}},
		{cutoff.Add(time.Millisecond), []CacheStatus{CacheBypass, CacheBypass}},
	} {
		for i, want := range c.want {
			if st := ask(`iv`, c.ts); st != want {
				t.Errorf("iv at %s (the cutoff is %s): answer %d %s, want %s", c.ts, cutoff, i+1, st, want)
			}
		}
	}
}
