package api

import (
	"encoding/json"
	"net/http"

	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/strata-tsdb/strata/query"
)

// TSDBStatus is what GET /api/v1/status/tsdb reports about storage.
type TSDBStatus struct {
	HeadSeries, HeadSamples int64
	// NumLabelPairs and the rankings come from the head's index, each
	// ranking the limit largest entries, largest first.
	NumLabelPairs               int
	SeriesCountByMetricName     []TSDBStat
	LabelValueCountByLabelName  []TSDBStat
	MemoryInBytesByLabelName    []TSDBStat
	SeriesCountByLabelValuePair []TSDBStat
	HeadMinTime, HeadMaxTime    int64 // ms; 0 when the head is empty
	WALBytes                    int64
	Segments                    []SegmentStatus
	SegmentBytes                int64
	SegmentSamples              uint64
}

// TSDBStat is one entry of a cardinality ranking.
type TSDBStat struct {
	Name  string
	Value uint64
}

// maxTSDBLimit is the largest ranking /api/v1/status/tsdb gives, as in
// Prometheus.
const maxTSDBLimit = 10000

// SegmentStatus describes one segment.
type SegmentStatus struct {
	ID               string
	MinTime, MaxTime int64
	Resolution       int64
	Series, Samples  uint64
	Bytes            int64
	Level            int
}

// tsdbStatus answers in the shape of Prometheus' /api/v1/status/tsdb
// (headStats), with Strata's segments and disk figures beside it.
// WALReplay is the data of /api/v1/status/walreplay, in Prometheus' shape:
// the replay reads write-ahead log segments Min through Max and is at
// Current (Current == Max once done). Percent is Strata's addition: the
// share of the log's bytes replayed.
type WALReplay struct {
	Min     int `json:"min"`
	Max     int `json:"max"`
	Current int `json:"current"`
	Percent int `json:"percent"`
}

// WALReplayBody is the whole JSON body of /api/v1/status/walreplay for st,
// for a server that answers it before the API is up.
func WALReplayBody(st WALReplay) []byte {
	b, _ := json.Marshal(struct { // a struct of ints always encodes
		Status string    `json:"status"`
		Data   WALReplay `json:"data"`
	}{"success", st})
	return b
}

func (a *API) walReplay(c echo.Context) error {
	var st WALReplay
	if a.opts.WALReplay != nil {
		st = a.opts.WALReplay()
	}
	return c.JSONBlob(http.StatusOK, WALReplayBody(st))
}

func (a *API) tsdbStatus(c echo.Context) error {
	if a.opts.TSDBStatus == nil {
		return a.success(c, func(dst []byte) []byte { return append(dst, "{}"...) }, nil, nil)
	}
	limit := 10
	if v := formValue(c, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badData("limit must be a positive number")
		}
		if n > maxTSDBLimit {
			return badData("limit must not exceed %d", maxTSDBLimit)
		}
		limit = n
	}
	st := a.opts.TSDBStatus(limit)
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, `{"headStats":{"numSeries":`...)
		dst = strconv.AppendInt(dst, st.HeadSeries, 10)
		dst = append(dst, `,"numLabelPairs":`...)
		dst = strconv.AppendInt(dst, int64(st.NumLabelPairs), 10)
		dst = append(dst, `,"numSamples":`...)
		dst = strconv.AppendInt(dst, st.HeadSamples, 10)
		dst = append(dst, `,"minTime":`...)
		dst = strconv.AppendInt(dst, st.HeadMinTime, 10)
		dst = append(dst, `,"maxTime":`...)
		dst = strconv.AppendInt(dst, st.HeadMaxTime, 10)
		dst = append(dst, '}')
		for _, r := range []struct {
			key   string
			stats []TSDBStat
		}{
			{"seriesCountByMetricName", st.SeriesCountByMetricName},
			{"labelValueCountByLabelName", st.LabelValueCountByLabelName},
			{"memoryInBytesByLabelName", st.MemoryInBytesByLabelName},
			{"seriesCountByLabelValuePair", st.SeriesCountByLabelValuePair},
		} {
			dst = append(dst, ',', '"')
			dst = append(dst, r.key...)
			dst = append(dst, `":[`...)
			for i, s := range r.stats {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"name":`...)
				dst = appendString(dst, s.Name)
				dst = append(dst, `,"value":`...)
				dst = strconv.AppendUint(dst, s.Value, 10)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		dst = append(dst, `,"walBytes":`...)
		dst = strconv.AppendInt(dst, st.WALBytes, 10)
		dst = append(dst, `,"segmentBytes":`...)
		dst = strconv.AppendInt(dst, st.SegmentBytes, 10)
		dst = append(dst, `,"segmentSamples":`...)
		dst = strconv.AppendUint(dst, st.SegmentSamples, 10)
		dst = append(dst, `,"bytesPerSample":`...)
		bps := 0.0
		if st.SegmentSamples > 0 {
			bps = float64(st.SegmentBytes) / float64(st.SegmentSamples)
		}
		dst = strconv.AppendFloat(dst, bps, 'f', 4, 64)
		dst = append(dst, `,"segments":[`...)
		for i, s := range st.Segments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, s.ID)
			for _, kv := range []struct {
				k string
				v int64
			}{{"minTime", s.MinTime}, {"maxTime", s.MaxTime}, {"resolution", s.Resolution}, {"series", int64(s.Series)}, {"samples", int64(s.Samples)}, {"bytes", s.Bytes}, {"level", int64(s.Level)}} {
				dst = append(dst, ',', '"')
				dst = append(dst, kv.k...)
				dst = append(dst, '"', ':')
				dst = strconv.AppendInt(dst, kv.v, 10)
			}
			dst = append(dst, '}')
		}
		return append(dst, "]}"...)
	}, nil, nil)
}

// flags answers the configuration in effect as a flat map of key → value,
// like Prometheus' /api/v1/status/flags.
func (a *API) flags(c echo.Context) error {
	keys := make([]string, 0, len(a.opts.Config))
	for k := range a.opts.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, a.opts.Config[k])
		}
		return append(dst, '}')
	}, nil, nil)
}

// config answers the configuration as YAML text in {"yaml": …}, like
// Prometheus' /api/v1/status/config.
func (a *API) config(c echo.Context) error {
	keys := make([]string, 0, len(a.opts.Config))
	for k := range a.opts.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var yaml []byte
	for _, k := range keys {
		yaml = append(yaml, k...)
		yaml = append(yaml, ": "...)
		yaml = strconv.AppendQuote(yaml, a.opts.Config[k])
		yaml = append(yaml, '\n')
	}
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, `{"yaml":`...)
		dst = appendString(dst, string(yaml))
		return append(dst, '}')
	}, nil, nil)
}

// runtimeInfo answers process facts in the shape of Prometheus'
// /api/v1/status/runtimeinfo, plus the uptime in seconds.
func (a *API) runtimeInfo(c echo.Context) error {
	cwd, _ := os.Getwd()
	return a.success(c, func(dst []byte) []byte {
		dst = append(dst, `{"startTime":`...)
		dst = appendString(dst, a.opts.StartTime.UTC().Format(time.RFC3339Nano))
		dst = append(dst, `,"uptimeSeconds":`...)
		dst = strconv.AppendFloat(dst, time.Since(a.opts.StartTime).Seconds(), 'f', 3, 64)
		dst = append(dst, `,"CWD":`...)
		dst = appendString(dst, cwd)
		dst = append(dst, `,"goroutineCount":`...)
		dst = strconv.AppendInt(dst, int64(runtime.NumGoroutine()), 10)
		dst = append(dst, `,"GOMAXPROCS":`...)
		dst = strconv.AppendInt(dst, int64(runtime.GOMAXPROCS(0)), 10)
		dst = append(dst, `,"GOGC":`...)
		dst = appendString(dst, a.opts.GOGC)
		return append(dst, '}')
	}, nil, nil)
}

// CacheAdmin is what the API needs of the result cache.
type CacheAdmin interface {
	// Invalidate and Reset return an error wrapping
	// cache.ErrInvalidationNotDurable when the change is made on this
	// instance but may not reach the others sharing the cache (answered
	// 503: retry).
	Invalidate(tag string) error
	Reset() error
	// Status returns the cache's figures.
	Status() CacheStatus
}

// CacheStatus is what /api/v1/status/cache answers: the result cache's
// counters (see cache.Stats for each one's meaning) and its hit ratio.
type CacheStatus struct {
	Entries      uint64 `json:"entries"`
	Bytes        uint64 `json:"bytes"`
	MaxBytes     uint64 `json:"maxBytes"`
	EvictedBytes uint64 `json:"evictedBytes"`
	Hits         uint64 `json:"hits"`
	PartialHits  uint64 `json:"partialHits"`
	Misses       uint64 `json:"misses"`
	StaleServed  uint64 `json:"staleServed"`
	SharedWaits  uint64 `json:"sharedWaits"`
	Computations uint64 `json:"computations"`
	// ExtentEvaluations counts the engine evaluations made to answer
	// range queries through the cache (missing extents, extensions,
	// refreshes, uncached tails).
	ExtentEvaluations uint64  `json:"extentEvaluations"`
	Refreshes         uint64  `json:"refreshes"`
	RefreshFailures   uint64  `json:"refreshFailures"`
	Invalidations     uint64  `json:"invalidations"`
	HitRatio          float64 `json:"hitRatio"` // (hits + stale) / lookups; 0 before the first
	Generation        uint64  `json:"generation"`
	L2Enabled         bool    `json:"l2Enabled"`
	L2Connected       bool    `json:"l2Connected"`
	L2Hits            uint64  `json:"l2Hits"`
	L2Misses          uint64  `json:"l2Misses"`
	L2Errors          uint64  `json:"l2Errors"`
	L2Writes          uint64  `json:"l2Writes"`
	L2WritesDropped   uint64  `json:"l2WritesDropped"`
	L2LockWaits       uint64  `json:"l2LockWaits"`
	L2Resyncs         uint64  `json:"l2Resyncs"`
	L2Unshared        uint64  `json:"l2Unshared"`
}

// invalidateCache bumps one tag (?tag=) or the tags of the series matching
// match[] between start and end.
func (a *API) invalidateCache(c echo.Context) error {
	if a.opts.Cache == nil {
		return echo.ErrNotFound
	}
	if tag := formValue(c, "tag"); tag != "" {
		if err := a.opts.Cache.Invalidate(tag); err != nil {
			return err // 503: made here, retry until durable
		}
		return c.NoContent(http.StatusNoContent)
	}
	sets, err := matchersParam(c, a.engine.Parser())
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return badData("give a tag parameter or match[] selectors")
	}
	mint, maxt, err := timeRange(c)
	if err != nil {
		return err
	}
	names, err := query.MetricNames(c.Request().Context(), a.queryable, sets, mint, maxt)
	if err != nil {
		return err
	}
	if err := a.frontend.Invalidate(names, mint, maxt); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) resetCache(c echo.Context) error {
	if a.opts.Cache == nil {
		return echo.ErrNotFound
	}
	if err := a.opts.Cache.Reset(); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) cacheStatus(c echo.Context) error {
	if a.opts.Cache == nil {
		return echo.ErrNotFound
	}
	b, err := json.Marshal(a.opts.Cache.Status())
	if err != nil {
		return err
	}
	return a.success(c, func(dst []byte) []byte { return append(dst, b...) }, nil, nil)
}
