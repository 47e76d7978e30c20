package query

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestFlushedChunksServeHourRuns: with the store's default options, data
// scraped every minute at an offset from the minute (as a Prometheus
// scrape's timestamps are) is flushed in chunks that never cross an hour,
// so every hourly window of avg_over_time(x[1h]) over flushed data is
// answered from hour runs, without decoding a chunk, and the answer equals
// the plain engine's. (With chunks cut every 2 h, 120 one-minute samples
// each, half the windows ended inside a chunk and decoded it.)
func TestFlushedChunksServeHourRuns(t *testing.T) {
	store, set, _ := openTestStore(t) // the store's default options
	logger := slog.New(slog.DiscardHandler)

	const series = 10
	start := time.Date(2026, 3, 2, 0, 0, 3, 214e6, time.UTC) // scrapes at hh:mm:03.214
	end := start.Add(8 * time.Hour)
	rng := rand.New(rand.NewSource(5))
	b := &ingest.Batch{}
	for h := range series {
		s := ingest.Series{Labels: labels.FromStrings("__name__", "x", "host", fmt.Sprintf("h%d", h))}
		v := 50.0
		for ts := start; ts.Before(end); ts = ts.Add(time.Minute) {
			v = min(100, max(0, v+rng.NormFloat64()))
			s.Samples = append(s.Samples, ingest.Sample{T: ts.UnixMilli(), V: v})
		}
		b.Series = append(b.Series, s)
	}
	if err := store.Append(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := store.Head().SamplesInHead(); n != 0 {
		t.Fatalf("%d samples left in the head after the flush", n)
	}

	q := NewQueryable(store.Head(), set)
	plain, err := NewEngine(logger, nil, q, Options{PlainRangeFunctions: true})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := NewEngine(logger, nil, q, Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Windows (h-1h, h] for h from 01:00 to 07:00: each holds 60 samples,
	// all flushed.
	r := RangeQuery{Query: `avg by (host) (avg_over_time(x[1h]))`, Start: start.Truncate(time.Hour).Add(time.Hour), End: start.Truncate(time.Hour).Add(7 * time.Hour), Step: time.Hour}
	want, werr := plain.RangeAt(ctx, r, ResolutionRaw)
	got, gerr := direct.RangeAt(ctx, r, ResolutionRaw)
	compareResults(t, r.Query, want, got, werr, gerr)
	windows := int64(series * 7)
	if runs := direct.engine.(*shardEngine).runs.Load(); runs != windows {
		t.Fatalf("%d of %d windows answered from hour runs", runs, windows)
	}
}
