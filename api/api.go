package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/docstore"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

// Appender takes validated batches; buffer.Head implements it. Append
// returns once the batch is durable and visible, or an error when nothing of
// it was applied.
type Appender interface {
	Append(b *ingest.Batch) error
}

// ExpectingAppender is an Appender whose appends share fsyncs (group
// commit) and which can be told of an append before its batch is
// decoded, so that a commit may wait for it (wal.WAL.Expect);
// buffer.Store implements it. Every Expected that ExpectAppend returns
// goes to AppendExpected, which ends it, or is ended by its Done.
type ExpectingAppender interface {
	Appender
	ExpectAppend() wal.Expected
	AppendExpected(x wal.Expected, b *ingest.Batch) error
}

// Flusher writes the head into segments; buffer.Store implements it.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Deleter deletes the samples in [mint, maxt] of the series matching any of
// the matcher sets.
type Deleter interface {
	DeleteSeries(ctx context.Context, sets [][]*labels.Matcher, mint, maxt int64) error
}

// BuildInfo is reported by /api/v1/status/buildinfo and /metrics.
type BuildInfo struct {
	Version, Revision, Branch, BuildDate, GoVersion string
}

// Options configures the API.
type Options struct {
	// MaxBodyBytes is the largest request body accepted, after decompression
	// for compressed formats; larger bodies get 413. Zero means 32 MiB.
	MaxBodyBytes int64
	// MaxQuerySeries is the most series a query may return (422 beyond).
	// Zero means no limit.
	MaxQuerySeries int
	// IngestLimits bounds each write request.
	IngestLimits ingest.Limits
	// OTLP says how OTLP metrics are converted into series.
	OTLP ingest.OTLPOptions
	// MaxFutureSkew refuses (400) a write with a sample more than this far
	// ahead of the server's clock; a far-future sample would force the
	// head's flush and could never be queried. Zero means no limit.
	MaxFutureSkew time.Duration
	// MaxSampleAge refuses (400) a write with a sample older than this.
	// Zero means no limit (backfill of any age is accepted).
	MaxSampleAge time.Duration
	// Now is the server's clock for MaxFutureSkew and MaxSampleAge; nil
	// means time.Now.
	Now func() time.Time
	// Build is reported by the build info endpoint.
	Build BuildInfo
	// EnableAdmin turns on the /api/v1/admin/ endpoints; off, they answer
	// 403 (Prometheus' --web.enable-admin-api).
	EnableAdmin bool
	// Flusher serves POST /api/v1/admin/tsdb/flush; nil disables it.
	Flusher Flusher
	// Deleter serves POST /api/v1/admin/tsdb/delete_series; nil disables it.
	Deleter Deleter
	// Jobs are background jobs an operator can run now with
	// POST /api/v1/admin/<name>/run ("retention", "downsample", "compaction"); each
	// returns a JSON-encodable summary.
	Jobs map[string]func(context.Context) (any, error)
	// Cache is the result cache, for its admin and status endpoints; nil
	// when caching is off.
	Cache CacheAdmin
	// TSDBStatus reports storage figures for /api/v1/status/tsdb; nil
	// answers an empty object.
	TSDBStatus func(limit int) TSDBStatus
	// Ready returns why the server is not ready to serve (e.g. the
	// write-ahead log cannot write), or nil when it is; nil means always
	// ready.
	Ready func() error
	// ReadOnly, when set, refuses every write route with 405 and this
	// message (a read replica).
	ReadOnly string
	// ReadyDetail, when set, adds a line to /readyz's answer about a part
	// that does not make the server unready (object storage).
	ReadyDetail func() string
	// WALReplay reports the write-ahead log replay for
	// /api/v1/status/walreplay; nil answers zeros.
	WALReplay func() WALReplay
	// UI serves the dashboard on every path the API does not claim; nil
	// serves nothing there.
	UI http.Handler
	// Config is the configuration in effect, secrets already masked, for
	// /api/v1/status/config and /api/v1/status/flags.
	Config map[string]string
	// StartTime is when the server started, for /api/v1/status/runtimeinfo.
	StartTime time.Time
	// GOGC is the garbage collector's percentage in force, as the GOGC
	// environment variable spells it, for runtimeinfo ("" for Go's
	// default).
	GOGC string
	// Concurrency bounds the query and write requests running at once
	// (limits.go); zero values mean no limit.
	Concurrency ConcurrencyLimits
	// Tokens are the bearer tokens of the read, write and admin roles
	// (auth.go); empty ones leave their routes open.
	Tokens Tokens
	// Snapshot serves POST /api/v1/admin/snapshot: it makes a consistent
	// copy of the data and returns its directory; nil disables it.
	Snapshot func(context.Context) (dir string, err error)
	// Metadata serves /api/v1/metadata; nil answers {}.
	Metadata MetadataSource
	// Exemplars serves /api/v1/query_exemplars; nil answers [].
	Exemplars ExemplarSource
	// Dashboards keeps the dashboard's saved dashboards for
	// /api/v1/dashboards (dashboards.go); nil answers 404 there.
	Dashboards *docstore.Store
}

// DefaultOptions returns the options used for fields left zero.
func DefaultOptions() Options {
	return Options{MaxBodyBytes: 32 << 20, IngestLimits: ingest.DefaultLimits(), OTLP: ingest.DefaultOTLPOptions()}
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	if o.MaxBodyBytes < 0 {
		return errors.New("max body bytes must not be negative")
	}
	if err := o.Concurrency.Validate(); err != nil {
		return err
	}
	if err := o.Tokens.Validate(); err != nil {
		return err
	}
	if err := o.OTLP.Validate(); err != nil {
		return err
	}
	return o.IngestLimits.Validate()
}

// API is the HTTP interface of Strata.
type API struct {
	logger    *slog.Logger
	opts      Options
	app       Appender
	expecting ExpectingAppender // app, when it is one; else nil
	engine    *query.Engine
	frontend  *query.Frontend
	queryable storage.Queryable
	metrics   *metrics
	gatherer  prometheus.Gatherer
	now       func() time.Time
	echo      *echo.Echo
	// rwSeries finds the series of remote write 1.0 requests by their
	// label bytes; nil when app is no ingest.Known.
	rwSeries *ingest.SeriesCache
}

// New builds the API and its routes. Queries go through frontend (and its
// cache); metadata requests read q. Metrics are registered with reg, and
// /metrics serves gatherer.
func New(logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer, app Appender, frontend *query.Frontend, q storage.Queryable, opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultOptions().MaxBodyBytes
	}
	a := &API{
		logger:    logger,
		opts:      opts,
		app:       app,
		engine:    frontend.Engine(),
		frontend:  frontend,
		queryable: q,
		metrics:   newMetrics(reg, opts.Build),
		gatherer:  gatherer,
		now:       time.Now,
	}
	a.expecting, _ = app.(ExpectingAppender)
	if known, ok := app.(ingest.Known); ok {
		a.rwSeries = ingest.NewSeriesCache(opts.IngestLimits, known, ingest.DefaultSeriesCacheSlots)
	}
	a.echo = a.routes()
	return a, nil
}

// Handler returns the HTTP handler serving every route.
func (a *API) Handler() http.Handler { return a.echo }

func (a *API) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.handleError
	// Routing runs before these, so each sees the matched route: auth
	// refuses before a request takes a concurrency slot or reads its body.
	lim := newLimits(a.opts.Concurrency)
	e.Use(a.instrument, a.authenticate(), lim.middleware, compressAnswers())
	if a.opts.ReadOnly != "" {
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				if routeRole(c.Request().Method, c.Path()) == roleWrite {
					return &apiError{typ: errBadData, status: http.StatusMethodNotAllowed, err: errors.New(a.opts.ReadOnly)}
				}
				return next(c)
			}
		})
	}

	getPost := []string{http.MethodGet, http.MethodPost}
	e.POST("/api/v1/write", a.remoteWrite)
	e.POST("/api/v1/read", a.remoteRead)
	e.POST("/write", a.lineProtocol)
	e.POST("/api/v2/write", a.lineProtocol)
	e.POST("/api/v1/import", a.importJSON)
	e.POST("/api/v1/import/prometheus", a.importPrometheus)
	e.POST("/api/v1/otlp/v1/metrics", a.otlpWrite)
	e.POST("/opentelemetry/v1/metrics", a.otlpWrite) // VictoriaMetrics' path

	e.Match(getPost, "/api/v1/query", a.instantQuery)
	e.Match(getPost, "/api/v1/query_range", a.rangeQuery)
	e.Match(getPost, "/api/v1/series", a.series)
	e.Match(getPost, "/api/v1/labels", a.labelNames)
	e.GET("/api/v1/label/:name/values", a.labelValues)
	e.GET("/api/v1/status/buildinfo", a.buildInfo)
	e.GET("/api/v1/status/tsdb", a.tsdbStatus)
	e.GET("/api/v1/status/walreplay", a.walReplay)
	admin := e.Group("/api/v1/admin", a.requireAdmin)
	admin.POST("/tsdb/flush", a.flush)
	admin.Match(getPost, "/tsdb/delete_series", a.deleteSeries)
	admin.POST("/:job/run", a.runJob)
	admin.POST("/cache/invalidate", a.invalidateCache)
	admin.DELETE("/cache", a.resetCache)
	admin.POST("/snapshot", a.snapshot)
	admin.POST("/tsdb/snapshot", a.snapshot) // Prometheus' path
	e.GET("/api/v1/status/cache", a.cacheStatus)
	// Go's profiler, as Prometheus and VictoriaMetrics serve it, but an
	// admin route: a CPU profile or a trace costs the server while it runs.
	debug := e.Group("/debug/pprof", a.requireAdmin)
	debug.GET("/*", echo.WrapHandler(http.HandlerFunc(servePprof)))

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(prometheus.Gatherers{a.gatherer, lim.registry}, promhttp.HandlerOpts{})))
	e.GET("/api/v1/status/flags", a.flags)
	e.GET("/api/v1/status/config", a.config)
	e.GET("/api/v1/status/runtimeinfo", a.runtimeInfo)
	e.Match(getPost, "/federate", a.federate)
	e.Match(getPost, "/api/v1/export", a.export)
	a.promRoutes(e)
	a.dashboardRoutes(e)
	if a.opts.UI != nil {
		ui := echo.WrapHandler(a.opts.UI)
		e.GET("/", ui)
		e.GET("/*", func(c echo.Context) error {
			if strings.HasPrefix(c.Request().URL.Path, "/api/") {
				return echo.ErrNotFound
			}
			return ui(c)
		})
	}
	return e
}

func (a *API) readyz(c echo.Context) error {
	if a.opts.Ready != nil {
		if err := a.opts.Ready(); err != nil {
			return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
		}
	}
	if a.opts.ReadyDetail != nil {
		return c.String(http.StatusOK, "ready\n"+a.opts.ReadyDetail()+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// requireAdmin refuses admin endpoints unless they are enabled.
func (a *API) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !a.opts.EnableAdmin {
			return &apiError{typ: errUnavailable, status: http.StatusForbidden, err: errors.New("admin APIs are disabled; start Strata with --enable-admin-api")}
		}
		return next(c)
	}
}

// deleteSeries deletes data with the semantics of Prometheus'
// /api/v1/admin/tsdb/delete_series.
func (a *API) deleteSeries(c echo.Context) error {
	if a.opts.Deleter == nil {
		return echo.ErrNotFound
	}
	sets, err := matchersParam(c, a.engine.Parser())
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return badData("no match[] parameter provided")
	}
	mint, maxt, err := timeRange(c)
	if err != nil {
		return err
	}
	if err := a.opts.Deleter.DeleteSeries(c.Request().Context(), sets, mint, maxt); err != nil {
		if errors.Is(err, cache.ErrInvalidationNotDurable) {
			return err // 503: deleted here; deleting again is harmless
		}
		return &apiError{typ: errInternal, status: http.StatusInternalServerError, err: fmt.Errorf("delete series: %w", err)}
	}
	return c.NoContent(http.StatusNoContent)
}

// runJob runs a background job now and answers its summary.
func (a *API) runJob(c echo.Context) error {
	job, ok := a.opts.Jobs[c.Param("job")]
	if !ok {
		return echo.ErrNotFound
	}
	res, err := job(c.Request().Context())
	if err != nil {
		return &apiError{typ: errInternal, status: http.StatusInternalServerError, err: fmt.Errorf("run %s: %w", c.Param("job"), err)}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, b...) }, nil, nil)
}

// flush writes the head into segments now, for operators (before a backup)
// and tests.
func (a *API) flush(c echo.Context) error {
	if a.opts.Flusher == nil {
		return echo.ErrNotFound
	}
	if err := a.opts.Flusher.Flush(c.Request().Context()); err != nil {
		return &apiError{typ: errInternal, status: http.StatusInternalServerError, err: fmt.Errorf("flush: %w", err)}
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) buildInfo(c echo.Context) error {
	b := a.opts.Build
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, '{')
		for i, kv := range [][2]string{{"version", b.Version}, {"revision", b.Revision}, {"branch", b.Branch}, {"buildUser", ""}, {"buildDate", b.BuildDate}, {"goVersion", b.GoVersion}} {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, kv[0])
			dst = append(dst, ':')
			dst = appendString(dst, kv[1])
		}
		return append(dst, '}')
	}, nil, nil)
}

// success writes a success envelope around data.
func (a *API) success(c echo.Context, data func([]byte) []byte, warnings, infos []string) error {
	buf := appendSuccess(make([]byte, 0, 1024), data, warnings, infos)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf)
}

// instrument counts requests and times them per route.
func (a *API) instrument(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			_, status = classify(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		a.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		a.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return err
	}
}
