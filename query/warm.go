package query

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// WarmQuery is a dashboard query the cache keeps warm: a range query over
// the last Range at Step, ending now.
type WarmQuery struct {
	Query string
	Range time.Duration
	Step  time.Duration
}

// ParseWarmQueries reads "range:step:query" entries separated by ';' or
// newlines, e.g. "24h:1m:sum(rate(http_requests_total[5m]))".
func ParseWarmQueries(s string) ([]WarmQuery, error) {
	var out []WarmQuery
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("warm query %q: want range:step:query", entry)
		}
		rng, err := time.ParseDuration(parts[0])
		if err != nil || rng <= 0 {
			return nil, fmt.Errorf("warm query %q: bad range %q", entry, parts[0])
		}
		step, err := time.ParseDuration(parts[1])
		if err != nil || step <= 0 {
			return nil, fmt.Errorf("warm query %q: bad step %q", entry, parts[1])
		}
		out = append(out, WarmQuery{Query: parts[2], Range: rng, Step: step})
	}
	return out, nil
}

// Warmer recomputes a list of dashboard queries through the frontend after
// start and after every invalidation, one at a time with a pause between
// them, so that the first dashboard load after a restart or a backfill is
// answered from the cache.
type Warmer struct {
	logger  *slog.Logger
	f       *Frontend
	queries []WarmQuery
	pause   time.Duration
	kick    chan struct{}
}

// NewWarmer returns a warmer of queries through f, pausing between two
// evaluations (the bound on the rate it adds load at).
func NewWarmer(logger *slog.Logger, f *Frontend, queries []WarmQuery, pause time.Duration) *Warmer {
	return &Warmer{logger: logger, f: f, queries: queries, pause: pause, kick: make(chan struct{}, 1)}
}

// Kick asks for the queries to be recomputed; it never blocks.
func (w *Warmer) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run warms the queries now and after every Kick until ctx is done.
func (w *Warmer) Run(ctx context.Context) {
	if len(w.queries) == 0 {
		return
	}
	for {
		w.WarmOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
	}
}

// WarmOnce evaluates every query once through the cache and returns how
// many succeeded.
func (w *Warmer) WarmOnce(ctx context.Context) int {
	ok := 0
	for i, q := range w.queries {
		if i > 0 && w.pause > 0 {
			select {
			case <-ctx.Done():
				return ok
			case <-time.After(w.pause):
			}
		}
		end := w.f.now().Truncate(q.Step)
		_, err := w.f.Range(ctx, RangeQuery{Query: q.Query, Start: end.Add(-q.Range), End: end, Step: q.Step}, false)
		if err != nil {
			if ctx.Err() == nil {
				w.logger.Warn("warm cached query", "query", q.Query, "err", err)
			}
			continue
		}
		ok++
	}
	return ok
}
