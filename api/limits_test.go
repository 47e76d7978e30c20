package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

func TestLimitName(t *testing.T) {
	ingestErr := func(sentinel error, msg string) error { return &ingest.Error{Line: 3, Msg: msg, Err: sentinel} }
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("other"), ""},
		{&http.MaxBytesError{Limit: 10}, limitBodyBytes},
		{ingestErr(ingest.ErrTooManySeries, "too many series"), limitSeriesPerRequest},
		{ingestErr(ingest.ErrTooManySamples, "too many samples"), limitSamplesPerRequest},
		{ingestErr(ingest.ErrTooManyLabels, "too many labels"), limitLabelsPerSeries},
		{ingestErr(ingest.ErrLabelTooLong, `label name "abc" too long: 3 bytes, limit is 2`), limitLabelNameLength},
		{ingestErr(ingest.ErrLabelTooLong, `value of label "abc" too long: 3 bytes, limit is 2`), limitLabelValueLength},
		{ingestErr(ingest.ErrLabelTooLong, `metric name too long: 3 bytes, limit is 2`), limitLabelValueLength},
		{ingestErr(ingest.ErrMalformed, "bad"), ""},
		{fmt.Errorf("append: %w", buffer.ErrTooManySeries), limitHeadSeries},
		{promql.ErrTooManySamples("query execution"), limitQuerySamples},
		{promql.ErrQueryTimeout("query execution"), limitQueryTimeout},
		{fmt.Errorf("%w: exceeded maximum resolution of 11000 points per timeseries", query.ErrBadQuery), limitQueryPoints},
		{fmt.Errorf("%w: parse error", query.ErrBadQuery), ""},
		{&apiError{typ: errUnavailable, status: 503, err: &limitError{limit: limitConcurrentWrites}}, limitConcurrentWrites},
	}
	for _, c := range cases {
		if got := limitName(c.err); got != c.want {
			t.Errorf("limitName(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestLimitGate(t *testing.T) {
	g := newGate("queries", limitConcurrentQueries, 2, 1, 50*time.Millisecond, prometheus.NewGauge(prometheus.GaugeOpts{Name: "a"}), prometheus.NewGauge(prometheus.GaugeOpts{Name: "b"}))
	ctx := context.Background()
	for range 2 {
		if err := g.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the next one waits, then times out.
	err := g.acquire(ctx)
	var le *limitError
	if !errors.As(err, &le) || le.Error() != "too many concurrent queries (limit 2): waited 50ms for a slot; retry later" {
		t.Fatalf("acquire on a full gate: %v", err)
	}
	// One waits; one more is refused at once.
	waiting := make(chan error, 1)
	go func() { waiting <- g.acquire(ctx) }()
	for g.queued.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	if err := g.acquire(ctx); !errors.As(err, &le) || le.Error() != "too many concurrent queries (limit 2): 1 already waiting; retry later" {
		t.Fatalf("acquire with a full queue: %v", err)
	}
	<-g.slots // a slot frees: the waiting one gets it
	if err := <-waiting; err != nil {
		t.Fatalf("queued acquire: %v", err)
	}
	// A client that gives up leaves the queue with its context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	g.timeout = time.Hour
	if err := g.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	if g.queued.Load() != 0 {
		t.Fatalf("%d still queued", g.queued.Load())
	}
}

func TestLimitConcurrencyValidate(t *testing.T) {
	for _, l := range []ConcurrencyLimits{{MaxQueries: -1}, {MaxQueuedWrites: -1}, {QueueTimeout: -1}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	if err := (ConcurrencyLimits{}).Validate(); err != nil {
		t.Error(err)
	}
}
