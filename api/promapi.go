package api

import (
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-tsdb/strata/ingest"
)

// The parts of Prometheus' HTTP API that need no storage of their own:
// query formatting and parsing, and the empty-but-valid answers for what a
// Prometheus server has and Strata does not (scrape targets, rules, alerts,
// Alertmanagers, server notifications). Dashboards and tools written for
// Prometheus (Grafana's data source checks, promtool, the Prometheus UI)
// call them and expect Prometheus' shape, not a 404.

func (a *API) promRoutes(e *echo.Echo) {
	getPost := []string{http.MethodGet, http.MethodPost}
	e.Match(getPost, "/api/v1/format_query", a.formatQuery)
	e.Match(getPost, "/api/v1/parse_query", a.parseQuery)
	e.GET("/api/v1/targets", a.staticJSON(`{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}`))
	e.GET("/api/v1/targets/metadata", a.staticJSON(`[]`))
	e.GET("/api/v1/scrape_pools", a.staticJSON(`{"scrapePools":[]}`))
	e.GET("/api/v1/alertmanagers", a.staticJSON(`{"activeAlertmanagers":[],"droppedAlertmanagers":[]}`))
	e.GET("/api/v1/alerts", a.staticJSON(`{"alerts":[]}`))
	e.GET("/api/v1/notifications", a.staticJSON(`[]`))
	e.GET("/api/v1/rules", a.rules)
	e.GET("/api/v1/metadata", a.metadata)
	e.Match(getPost, "/api/v1/query_exemplars", a.queryExemplars)
	e.GET("/-/healthy", func(c echo.Context) error { return c.String(http.StatusOK, "Strata is Healthy.\n") })
	e.GET("/-/ready", a.promReady)
}

// formatQuery answers the query pretty-printed, as Prometheus'
// /api/v1/format_query does.
func (a *API) formatQuery(c echo.Context) error {
	expr, err := a.engine.Parser().ParseExpr(formValue(c, "query"))
	if err != nil {
		return badData("invalid parameter \"query\": %v", err)
	}
	pretty := expr.Pretty(0)
	return a.success(c, func(dst []byte) []byte { return appendString(dst, pretty) }, nil, nil)
}

// parseQuery answers the query's syntax tree in the JSON shape of
// Prometheus' /api/v1/parse_query (its UI's tree view).
func (a *API) parseQuery(c echo.Context) error {
	expr, err := a.engine.Parser().ParseExpr(formValue(c, "query"))
	if err != nil {
		return badData("invalid parameter \"query\": %v", err)
	}
	b, err := json.Marshal(translateAST(expr))
	if err != nil {
		return err
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, b...) }, nil, nil)
}

// rules answers Strata's recording and alerting rules: there are none. The
// type parameter is checked as Prometheus checks it.
func (a *API) rules(c echo.Context) error {
	switch typ := formValue(c, "type"); typ {
	case "", "alert", "record":
	default:
		return badData("invalid parameter \"type\": not supported value %q", typ)
	}
	return a.staticJSON(`{"groups":[]}`)(c)
}

// metadata answers the metric metadata Strata keeps (remote write's
// metadata), in the shape of Prometheus' /api/v1/metadata: an object of
// family name → list of {type, unit, help}, {} when there is none. metric,
// limit and limit_per_metric work as in Prometheus.
func (a *API) metadata(c echo.Context) error {
	limits := map[string]int{"limit": -1, "limit_per_metric": -1}
	for _, p := range []string{"limit", "limit_per_metric"} {
		if v := formValue(c, p); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return badData("%s must be a number", p)
			}
			limits[p] = n
		}
	}
	var entries []ingest.FamilyMetadata
	if a.opts.Metadata != nil {
		entries = a.opts.Metadata.Query(formValue(c, "metric"), limits["limit"], limits["limit_per_metric"])
	}
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, '{')
		for i, e := range entries {
			if i == 0 || entries[i-1].Family != e.Family {
				if i > 0 {
					dst = append(dst, "],"...)
				}
				dst = appendString(dst, e.Family)
				dst = append(dst, ":["...)
			} else {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":`...)
			dst = appendString(dst, string(e.Type))
			dst = append(dst, `,"unit":`...)
			dst = appendString(dst, e.Unit)
			dst = append(dst, `,"help":`...)
			dst = appendString(dst, e.Help)
			dst = append(dst, '}')
		}
		if len(entries) > 0 {
			dst = append(dst, ']')
		}
		return append(dst, '}')
	}, nil, nil)
}

// MetadataSource serves /api/v1/metadata; buffer's metadata.Store
// implements it. Query returns the entries grouped by family (see
// metadata.Store.Query for the limits).
type MetadataSource interface {
	Query(metric string, limit, limitPerMetric int) []ingest.FamilyMetadata
}

// queryExemplars answers the exemplars Strata keeps (from remote write) for
// the series the selectors of query select, between start and end, in the
// shape of Prometheus' /api/v1/query_exemplars: a list of
// {seriesLabels, exemplars: [{labels, value, timestamp}]}; null for a
// query without selectors, as Prometheus.
func (a *API) queryExemplars(c echo.Context) error {
	mint, maxt, err := timeRange(c)
	if err != nil {
		return err
	}
	expr, err := a.engine.Parser().ParseExpr(formValue(c, "query"))
	if err != nil {
		return badData("%v", err)
	}
	sets := parser.ExtractSelectors(expr)
	if len(sets) == 0 {
		return a.staticJSON(`null`)(c)
	}
	var res []ingest.SeriesExemplars
	if a.opts.Exemplars != nil {
		res = a.opts.Exemplars.Select(mint, maxt, sets...)
	}
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, '[')
		for i, se := range res {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"seriesLabels":`...)
			dst = appendLabels(dst, se.Labels)
			dst = append(dst, `,"exemplars":[`...)
			for j, e := range se.Exemplars {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"labels":`...)
				dst = appendLabels(dst, e.Labels)
				dst = append(dst, `,"value":"`...)
				dst = appendFloat(dst, e.V)
				dst = append(dst, `","timestamp":`...)
				dst = appendTimestamp(dst, e.T)
				dst = append(dst, '}')
			}
			dst = append(dst, "]}"...)
		}
		return append(dst, ']')
	}, nil, nil)
}

// ExemplarSource serves /api/v1/query_exemplars; buffer's exemplars.Store
// implements it (see its Select).
type ExemplarSource interface {
	Select(mint, maxt int64, sets ...[]*labels.Matcher) []ingest.SeriesExemplars
}

// staticJSON answers a fixed success envelope around data.
func (a *API) staticJSON(data string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return a.success(c, func(dst []byte) []byte { return append(dst, data...) }, nil, nil)
	}
}

// promReady is Prometheus' /-/ready: 200 once the server serves, 503
// while it does not (e.g. replaying the write-ahead log).
func (a *API) promReady(c echo.Context) error {
	if a.opts.Ready != nil {
		if err := a.opts.Ready(); err != nil {
			return c.String(http.StatusServiceUnavailable, "Service Unavailable: "+err.Error()+"\n")
		}
	}
	return c.String(http.StatusOK, "Strata is Ready.\n")
}

// compressAnswers gzips answers for clients that accept it, as Prometheus
// does, at the fastest level (a 600 KB range answer shrinks ~10×; the
// cost stays small next to encoding it). Write and remote-read routes are
// left alone (their answers are tiny or snappy-framed already), and so are
// /metrics and the dashboard's files, which compress themselves, and range
// query answers, which answer.go gzips (and stores gzipped). Small
// answers go out as they are.
func compressAnswers() echo.MiddlewareFunc {
	return middleware.GzipWithConfig(middleware.GzipConfig{
		Level:     gzip.BestSpeed,
		MinLength: 1024,
		Skipper: func(c echo.Context) bool {
			p := c.Path()
			return writeRoutes[p] || p == "/api/v1/read" || p == "/metrics" || p == "/" || p == "/*" ||
				p == "/api/v1/query_range" // answer.go gzips its answers

		},
	})
}
