package query

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSubMillisecondStepRefused: a step under a millisecond (the API's
// step=0.0005) is a bad query, through the cache or not, as a step of 0 is:
// PromQL's grid is in milliseconds, and such a step was evaluated as a step
// of 0, a division by zero in the engine reported as an execution error.
// A step of exactly 1ms is answered.
func TestSubMillisecondStepRefused(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("x", now.Add(-2*time.Hour), now.Add(-time.Hour), 10*time.Second))
	ctx := context.Background()
	start := now.Add(-90 * time.Minute)
	for _, step := range []time.Duration{500 * time.Microsecond, time.Microsecond, time.Millisecond - 1} {
		r := RangeQuery{Query: `x`, Start: start, End: start.Add(time.Second), Step: step}
		for _, bypass := range []bool{false, true} {
			_, err := e.frontend.Range(ctx, r, bypass)
			if !errors.Is(err, ErrBadQuery) || strings.Contains(err.Error(), "divide by zero") {
				t.Errorf("step %s (bypass %v): %v, want a bad query", step, bypass, err)
			}
		}
		if _, err := e.frontend.engine.Range(ctx, r); !errors.Is(err, ErrBadQuery) {
			t.Errorf("step %s, the engine alone: %v, want a bad query", step, err)
		}
	}
	r := RangeQuery{Query: `x`, Start: start, End: start.Add(time.Second), Step: time.Millisecond}
	cached, fresh := rangeBoth(t, e.frontend, r)
	sameAnswer(t, "x at step 1ms", cached, fresh)
	if n := len(asMatrix(fresh.Value)); n != 1 {
		t.Fatalf("x at step 1ms: %d series, want 1", n)
	}
}
