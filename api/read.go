package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/strata-tsdb/strata/query"
)

// queryContext applies the optional timeout parameter. The engine
// evaluations of the request (the frontend's extents, run in parallel)
// share one select budget (query.max_select_bytes).
func queryContext(c echo.Context) (context.Context, context.CancelFunc, error) {
	ctx := query.WithSelectBudget(c.Request().Context())
	if v := formValue(c, "timeout"); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, nil, badData("invalid parameter \"timeout\": %v", err)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		return ctx, cancel, nil
	}
	return ctx, func() {}, nil
}

func (a *API) instantQuery(c echo.Context) error {
	qs := formValue(c, "query")
	if qs == "" {
		return badData("invalid parameter \"query\": query must not be empty")
	}
	ts, err := timeParam(c, "time", a.now())
	if err != nil {
		return err
	}
	ctx, cancel, err := queryContext(c)
	if err != nil {
		return err
	}
	defer cancel()
	start := time.Now()
	maxRes, err := query.ParseResolution(formValue(c, "max_source_resolution"))
	if err != nil {
		return err
	}
	if sp := formValue(c, "stats"); sp != "" {
		res, st, err := a.engine.InstantWithStats(ctx, qs, ts, maxRes, sp == "all")
		return a.queryResult(c, "instant", start, res, withStats(st, sp), err)
	}
	res, err := a.frontend.Instant(ctx, qs, ts, maxRes, bypassCache(c))
	return a.queryResult(c, "instant", start, res, nil, err)
}

// bypassCache reports whether the request asks not to use the cache:
// nocache=1 or Cache-Control: no-cache.
func bypassCache(c echo.Context) bool {
	if v := formValue(c, "nocache"); v == "1" || v == "true" {
		return true
	}
	return strings.Contains(strings.ToLower(c.Request().Header.Get("Cache-Control")), "no-cache")
}

func (a *API) rangeQuery(c echo.Context) error {
	qs := formValue(c, "query")
	if qs == "" {
		return badData("invalid parameter \"query\": query must not be empty")
	}
	var r query.RangeQuery
	r.Query = qs
	var err error
	if r.Start, err = requiredTime(c, "start"); err != nil {
		return err
	}
	if r.End, err = requiredTime(c, "end"); err != nil {
		return err
	}
	step := formValue(c, "step")
	if step == "" {
		return badData("invalid parameter \"step\": missing")
	}
	if r.Step, err = parseDuration(step); err != nil {
		return badData("invalid parameter \"step\": %v", err)
	}
	if r.MaxSourceResolution, err = query.ParseResolution(formValue(c, "max_source_resolution")); err != nil {
		return err
	}
	ctx, cancel, err := queryContext(c)
	if err != nil {
		return err
	}
	defer cancel()
	start := time.Now()
	if sp := formValue(c, "stats"); sp != "" {
		res, st, err := a.engine.RangeWithStats(ctx, r, sp == "all")
		return a.queryResult(c, "range", start, res, withStats(st, sp), err)
	}
	b, err := a.frontend.RangeBody(ctx, r, bypassCache(c), a.rangeEncoder(acceptsGzip(c)))
	defer b.Release() // sent by then: the response writer keeps no bytes
	a.metrics.queryDuration.WithLabelValues("range").Observe(time.Since(start).Seconds())
	return a.sendBody(c, "range", b, err)
}

func requiredTime(c echo.Context, name string) (time.Time, error) {
	if formValue(c, name) == "" {
		return time.Time{}, badData("invalid parameter %q: missing", name)
	}
	return timeParam(c, name, time.Time{})
}

// cacheHeader tells the client how its query was answered.
const cacheHeader = "X-Strata-Cache"

// resolutionHeader tells the client which data its answer was computed
// from: raw, 5m0s or 1h0m0s.
const resolutionHeader = "X-Strata-Resolution"

// queryStats is what the stats parameter adds to an answer.
type queryStats struct {
	stats   stats.QueryStats
	warning string // for a stats value Prometheus deprecates
}

// withStats pairs the engine's statistics with the warning Prometheus
// gives for a stats value other than "true" or "all" (any value turns
// statistics on, "all" adds the per-step ones).
func withStats(st stats.QueryStats, param string) *queryStats {
	qs := &queryStats{stats: st}
	if param != "true" && param != "all" {
		qs.warning = fmt.Sprintf("value %q for parameter \"stats\" is deprecated and will be rejected in the next major release, use \"true\" or \"all\"", param)
	}
	return qs
}

// queryResult answers a query's result, with the engine's statistics
// inside data when st is not nil.
func (a *API) queryResult(c echo.Context, kind string, start time.Time, res *query.Result, st *queryStats, err error) error {
	a.metrics.queryDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err != nil {
		typ, _ := classify(err)
		a.metrics.queries.WithLabelValues(kind, string(typ)).Inc()
		return err
	}
	if err := a.checkSeries(seriesCount(res.Value)); err != nil {
		a.metrics.queries.WithLabelValues(kind, string(errExecution)).Inc()
		return err
	}
	a.metrics.queries.WithLabelValues(kind, "success").Inc()
	c.Response().Header().Set(cacheHeader, string(res.Cache))
	c.Response().Header().Set(resolutionHeader, res.Resolution.String())
	warnings := res.Warnings
	var statsJSON []byte
	if st != nil {
		if statsJSON, err = json.Marshal(st.stats); err != nil {
			return err
		}
		if st.warning != "" {
			warnings = append(warnings, st.warning)
		}
	}
	return a.success(c, func(dst []byte) []byte {
		dst = appendQueryData(dst, res.Value)
		if statsJSON == nil {
			return dst
		}
		// data is an object: its statistics go before the closing brace.
		dst = append(dst[:len(dst)-1], `,"stats":`...)
		dst = append(dst, statsJSON...)
		return append(dst, '}')
	}, warnings, res.Infos)
}

// checkSeries refuses an answer of n series when that is more than
// Options.MaxQuerySeries.
func (a *API) checkSeries(n int) error {
	if a.opts.MaxQuerySeries > 0 && n > a.opts.MaxQuerySeries {
		return &apiError{typ: errExecution, status: http.StatusUnprocessableEntity,
			err: fmt.Errorf("%w: the query returned %d series, more than the limit of %d (query.max_series); narrow it or aggregate", errTooManyQuerySeries, n, a.opts.MaxQuerySeries)}
	}
	return nil
}

// errTooManyQuerySeries marks a query refused for returning too many series.
var errTooManyQuerySeries = errors.New("too many series")

// seriesCount returns how many series a query result holds.
func seriesCount(v parser.Value) int {
	switch v := v.(type) {
	case promql.Matrix:
		return len(v)
	case promql.Vector:
		return len(v)
	}
	return 0
}

// timeRange reads the optional start and end of the metadata endpoints.
func timeRange(c echo.Context) (int64, int64, error) {
	start, err := timeParam(c, "start", minTime)
	if err != nil {
		return 0, 0, err
	}
	end, err := timeParam(c, "end", maxTime)
	if err != nil {
		return 0, 0, err
	}
	if end.Before(start) {
		return 0, 0, badData("end timestamp must not be before start time")
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

// listingQuerier reads the optional start, end and limit of the listing
// endpoints (series, label names, label values) and opens a querier over
// that range, which the caller closes.
func (a *API) listingQuerier(c echo.Context) (q storage.Querier, mint, maxt int64, limit int, err error) {
	if mint, maxt, err = timeRange(c); err != nil {
		return nil, 0, 0, 0, err
	}
	if limit, err = limitParam(c); err != nil {
		return nil, 0, 0, 0, err
	}
	if q, err = a.queryable.Querier(mint, maxt); err != nil {
		return nil, 0, 0, 0, err
	}
	return q, mint, maxt, limit, nil
}

// errTruncated is the warning Prometheus adds to an answer cut by limit.
const errTruncated = "results truncated due to limit"

// hintLimit is the limit to ask storage for: one more than the API's, so
// that a cut answer can be told from one that fits (0: no limit).
func hintLimit(limit int) int {
	if limit > 0 {
		return limit + 1
	}
	return 0
}

func (a *API) labelNames(c echo.Context) error {
	return a.labelQuery(c, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(ctx, hints, ms...)
		return names, err
	})
}

func (a *API) labelValues(c echo.Context) error {
	name, err := url.PathUnescape(c.Param("name"))
	if err == nil && strings.HasPrefix(name, "U__") {
		// Prometheus 3's form of a UTF-8 label name in a path:
		// U__service_2e_name is service.name.
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if err != nil || !model.UTF8Validation.IsValidLabelName(name) {
		return badData("invalid label name: %q", name)
	}
	return a.labelQuery(c, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		vals, _, err := q.LabelValues(ctx, name, hints, ms...)
		return vals, err
	})
}

// labelQuery runs fn once per match[] set (or once without matchers) and
// answers the sorted union. With a limit, storage is asked for one value
// more than the limit (and gives only that many, without building the
// whole list), so a cut answer is told apart; it carries Prometheus'
// warning.
func (a *API) labelQuery(c echo.Context, fn func(context.Context, storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, error)) error {
	sets, err := matchersParam(c, a.engine.Parser())
	if err != nil {
		return err
	}
	q, _, _, limit, err := a.listingQuerier(c)
	if err != nil {
		return err
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	// Each set's answer holds at most limit+1 values: the union is bounded.
	hints := &storage.LabelHints{Limit: hintLimit(limit)}
	var out []string
	if len(sets) == 1 {
		// One answer is already sorted and free of duplicates (the
		// storage.Querier contract): no second copy, no second sort.
		if out, err = fn(c.Request().Context(), q, hints, sets[0]); err != nil {
			return err
		}
	} else {
		set := map[string]struct{}{}
		for _, ms := range sets {
			vals, err := fn(c.Request().Context(), q, hints, ms)
			if err != nil {
				return err
			}
			for _, v := range vals {
				set[v] = struct{}{}
			}
		}
		out = slices.Sorted(maps.Keys(set))
	}
	var warnings []string
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings = append(warnings, errTruncated)
	}
	return a.success(c, func(dst []byte) []byte { return appendStringArray(dst, out) }, warnings, nil)
}
