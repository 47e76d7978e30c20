package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

// ConcurrencyLimits bound how many requests run at once. A request over the
// limit waits in a queue for a slot; when the queue is full, or it waited
// QueueTimeout, it is answered 503 with a message that names the limit, and
// nothing of it is applied.
type ConcurrencyLimits struct {
	// MaxQueries is how many query requests (instant and range queries,
	// series, label names and values, remote read) run at once. Zero means
	// no limit.
	MaxQueries int
	// MaxQueuedQueries is how many query requests may wait for a slot.
	// Zero means none waits: over MaxQueries they are refused at once.
	MaxQueuedQueries int
	// MaxWrites is how many write requests run at once. Zero means no limit.
	MaxWrites int
	// MaxQueuedWrites is how many write requests may wait for a slot. Zero
	// means none waits.
	MaxQueuedWrites int
	// QueueTimeout is the longest a request waits in a queue. Zero means it
	// waits as long as its client does.
	QueueTimeout time.Duration
}

// Validate reports the first limit that is out of range.
func (l ConcurrencyLimits) Validate() error {
	switch {
	case l.MaxQueries < 0, l.MaxQueuedQueries < 0:
		return errors.New("query concurrency limits must not be negative")
	case l.MaxWrites < 0, l.MaxQueuedWrites < 0:
		return errors.New("write concurrency limits must not be negative")
	case l.QueueTimeout < 0:
		return errors.New("queue timeout must not be negative")
	}
	return nil
}

// The limit label of strata_limit_rejections_total is the config key of the
// limit (cmd/strata), so that an operator reads the knob to turn.
const (
	limitBodyBytes         = "limits.max_body_bytes"
	limitSeriesPerRequest  = "limits.max_series_per_request"
	limitSamplesPerRequest = "limits.max_samples_per_request"
	limitLabelsPerSeries   = "limits.max_labels_per_series"
	limitLabelNameLength   = "limits.max_label_name_length"
	limitLabelValueLength  = "limits.max_label_value_length"
	limitHeadSeries        = "limits.max_series"
	limitConcurrentQueries = "limits.max_concurrent_queries"
	limitConcurrentWrites  = "limits.max_concurrent_writes"
	limitQueryTimeout      = "query.timeout"
	limitQuerySamples      = "query.max_samples"
	limitQueryPoints       = "query.max_points_per_series"
	limitQuerySeries       = "query.max_series"
	limitQuerySelect       = "query.max_select_bytes"
	limitFutureSkew        = "limits.max_future_skew"
	limitSampleAge         = "limits.max_sample_age"
)

var allLimits = []string{
	limitBodyBytes, limitSeriesPerRequest, limitSamplesPerRequest, limitLabelsPerSeries,
	limitLabelNameLength, limitLabelValueLength, limitHeadSeries, limitConcurrentQueries,
	limitConcurrentWrites, limitQueryTimeout, limitQuerySamples, limitQueryPoints, limitQuerySeries, limitQuerySelect,
	limitFutureSkew, limitSampleAge,
}

// limitError is a request refused by a concurrency limit.
type limitError struct {
	limit string // config key, for the metric
	msg   string
}

func (e *limitError) Error() string { return e.msg }

// limitName returns the config key of the limit err reports, or "" when err
// is not about a limit.
func limitName(err error) string {
	if err == nil {
		return ""
	}
	var (
		le      *limitError
		mbe     *http.MaxBytesError
		samples promql.ErrTooManySamples
		timeout promql.ErrQueryTimeout
	)
	switch {
	case errors.As(err, &le):
		return le.limit
	case errors.Is(err, errTooManyQuerySeries), errors.Is(err, query.ErrTooManySeries):
		return limitQuerySeries
	case errors.Is(err, query.ErrSelectLimit):
		return limitQuerySelect
	case errors.As(err, &mbe):
		return limitBodyBytes
	case errors.Is(err, ingest.ErrTooManySeries):
		return limitSeriesPerRequest
	case errors.Is(err, ingest.ErrTooManySamples):
		return limitSamplesPerRequest
	case errors.Is(err, ingest.ErrTooManyLabels):
		return limitLabelsPerSeries
	case errors.Is(err, ingest.ErrLabelTooLong):
		// ingest words the message "label name … too long" for names and
		// "value of label …" or "metric name …" for values.
		if strings.Contains(err.Error(), "label name") {
			return limitLabelNameLength
		}
		return limitLabelValueLength
	case errors.Is(err, buffer.ErrTooManySeries):
		return limitHeadSeries
	case errors.Is(err, ingest.ErrOutOfBounds):
		if strings.Contains(err.Error(), " before ") {
			return limitSampleAge
		}
		return limitFutureSkew
	case errors.As(err, &samples):
		return limitQuerySamples
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return limitQueryTimeout
	case errors.Is(err, query.ErrBadQuery) && strings.Contains(err.Error(), "maximum resolution"):
		return limitQueryPoints
	}
	return ""
}

// routeKind sorts routes for the concurrency limits.
type routeKind int

const (
	kindOther routeKind = iota
	kindQuery
	kindWrite
)

// writeRoutes and queryRoutes are the route patterns (echo's c.Path()) of
// the write and query endpoints.
var (
	writeRoutes = map[string]bool{
		"/api/v1/write": true, "/write": true, "/api/v2/write": true,
		"/api/v1/import": true, "/api/v1/import/prometheus": true,
		"/api/v1/otlp/v1/metrics": true, "/opentelemetry/v1/metrics": true,
	}
	queryRoutes = map[string]bool{
		"/api/v1/query": true, "/api/v1/query_range": true, "/api/v1/series": true,
		"/api/v1/labels": true, "/api/v1/label/:name/values": true, "/api/v1/read": true,
		"/api/v1/query_exemplars": true,
	}
)

func kindOf(route string) routeKind {
	switch {
	case writeRoutes[route]:
		return kindWrite
	case queryRoutes[route]:
		return kindQuery
	}
	return kindOther
}

// limits is the middleware that applies the concurrency limits and counts
// every request refused by a limit. Its metrics live in their own registry,
// served by /metrics beside the API's.
type limits struct {
	registry   *prometheus.Registry
	rejections *prometheus.CounterVec
	queries    *gate
	writes     *gate
}

func newLimits(l ConcurrencyLimits) *limits {
	m := &limits{
		registry: prometheus.NewRegistry(),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_limit_rejections_total",
			Help: "Requests refused by a limit, by the limit's config key.",
		}, []string{"limit"}),
	}
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_limit_in_flight_requests", Help: "Requests holding a concurrency slot, by kind (query, write).",
	}, []string{"kind"})
	queued := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_limit_queued_requests", Help: "Requests waiting for a concurrency slot, by kind (query, write).",
	}, []string{"kind"})
	m.registry.MustRegister(m.rejections, inFlight, queued)
	for _, name := range allLimits {
		m.rejections.WithLabelValues(name)
	}
	m.queries = newGate("queries", limitConcurrentQueries, l.MaxQueries, l.MaxQueuedQueries, l.QueueTimeout,
		inFlight.WithLabelValues("query"), queued.WithLabelValues("query"))
	m.writes = newGate("writes", limitConcurrentWrites, l.MaxWrites, l.MaxQueuedWrites, l.QueueTimeout,
		inFlight.WithLabelValues("write"), queued.WithLabelValues("write"))
	return m
}

// middleware runs query and write requests through their gate and counts
// the requests a limit refused, wherever it was checked.
func (m *limits) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var err error
		switch kindOf(c.Path()) {
		case kindQuery:
			err = m.queries.run(c, next)
		case kindWrite:
			err = m.writes.run(c, next)
		default:
			err = next(c)
		}
		if name := limitName(err); name != "" {
			m.rejections.WithLabelValues(name).Inc()
		}
		return err
	}
}

// gate is a counting semaphore with a bounded queue.
type gate struct {
	what      string // "queries", for messages
	limit     string // config key
	slots     chan struct{}
	maxQueued int64
	timeout   time.Duration
	queued    atomic.Int64

	inFlight, queuedGauge prometheus.Gauge
}

func newGate(what, limit string, max, maxQueued int, timeout time.Duration, inFlight, queued prometheus.Gauge) *gate {
	g := &gate{what: what, limit: limit, maxQueued: int64(maxQueued), timeout: timeout, inFlight: inFlight, queuedGauge: queued}
	if max > 0 {
		g.slots = make(chan struct{}, max)
	}
	return g
}

// run calls next holding a slot, or refuses the request without calling it.
func (g *gate) run(c echo.Context, next echo.HandlerFunc) error {
	if g.slots == nil {
		return next(c)
	}
	if err := g.acquire(c.Request().Context()); err != nil {
		if _, ok := err.(*limitError); ok {
			// Clients that retry (Prometheus' remote write does on 503)
			// should not do so at once.
			c.Response().Header().Set("Retry-After", "1")
			return &apiError{typ: errUnavailable, status: http.StatusServiceUnavailable, err: err}
		}
		return err
	}
	g.inFlight.Inc()
	defer func() {
		g.inFlight.Dec()
		<-g.slots
	}()
	return next(c)
}

// acquire takes a slot, waiting in the queue when there is room in it. It
// returns a *limitError when the request is refused, or ctx's error when
// the client gave up first.
func (g *gate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.queued.Add(1) > g.maxQueued {
		g.queued.Add(-1)
		if g.maxQueued == 0 {
			return g.refuse("none may wait")
		}
		return g.refuse(fmt.Sprintf("%d already waiting", g.maxQueued))
	}
	g.queuedGauge.Inc()
	defer func() {
		g.queued.Add(-1)
		g.queuedGauge.Dec()
	}()
	var expired <-chan time.Time
	if g.timeout > 0 {
		t := time.NewTimer(g.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-expired:
		return g.refuse(fmt.Sprintf("waited %s for a slot", g.timeout))
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) refuse(detail string) error {
	return &limitError{limit: g.limit, msg: fmt.Sprintf("too many concurrent %s (limit %d): %s; retry later", g.what, cap(g.slots), detail)}
}
