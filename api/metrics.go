package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	samplesIn     *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	otlpRejected  prometheus.Counter
	exDropped     *prometheus.CounterVec
	queries       *prometheus.CounterVec
	queryDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, b BuildInfo) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		samplesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ingest_samples_total", Help: "Samples accepted, by wire format.",
		}, []string{"format"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ingest_rejected_requests_total", Help: "Write requests refused, by wire format and reason.",
		}, []string{"format", "reason"}),
		otlpRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_otlp_rejected_data_points_total", Help: "OTLP data points refused in requests that were otherwise stored (delta temporality), reported to the sender as a partial success.",
		}),
		exDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ingest_exemplars_dropped_total", Help: "Exemplars left out of write requests whose samples were stored, by wire format and reason (invalid: labels Prometheus refuses).",
		}, []string{"format", "reason"}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_queries_total", Help: "PromQL queries by kind (instant, range) and outcome.",
		}, []string{"kind", "outcome"}),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_query_duration_seconds", Help: "PromQL evaluation latency by kind.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"kind"}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_build_info", Help: "Build information; the value is 1.",
	}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.samplesIn, m.rejected, m.otlpRejected, m.exDropped, m.queries, m.queryDuration, info)
	}
	return m
}
