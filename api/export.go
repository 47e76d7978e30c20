package api

import (
	"bufio"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// Moving data out: Prometheus' /federate (the newest sample of each
// matching series, in the text exposition format) and VictoriaMetrics'
// /api/v1/export (every sample of each matching series in a time range, as
// the JSON lines /api/v1/import reads back).

// mergedSelect selects every matcher set and merges the results into one
// sorted, de-duplicated series set, as Prometheus' federation does.
func (a *API) mergedSelect(c echo.Context, q storage.Querier, hints *storage.SelectHints) (storage.SeriesSet, error) {
	sets, err := matchersParam(c, a.engine.Parser())
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, badData("no match[] parameter provided")
	}
	ss := make([]storage.SeriesSet, 0, len(sets))
	for _, ms := range sets {
		ss = append(ss, q.Select(c.Request().Context(), true, hints, ms...))
	}
	// Each set is sorted: the merge drops the series several sets select,
	// and gives at most hints.Limit series (0: all).
	return storage.NewMergeSeriesSet(ss, hints.Limit, storage.ChainedSeriesMerge), nil
}

// federate answers the newest float sample, no older than the lookback
// delta, of every series matching a match[] selector, grouped by metric
// name, in the Prometheus text format with instance="" added where a
// series has no instance label (Prometheus adds its external labels the
// same way; Strata has none). Native histograms are left out, as
// Prometheus leaves them out of the text format.
func (a *API) federate(c echo.Context) error {
	now := a.now()
	maxt := now.UnixMilli()
	mint := now.Add(-a.engine.Options().LookbackDelta).UnixMilli()
	q, err := a.queryable.Querier(mint, maxt)
	if err != nil {
		return err
	}
	defer q.Close()
	// Not Func "series": that asks for labels only, and federation reads
	// samples (Prometheus' federate gives no Func either).
	set, err := a.mergedSelect(c, q, &storage.SelectHints{Start: mint, End: maxt})
	if err != nil {
		return err
	}
	type sample struct {
		ls labels.Labels
		t  int64
		f  float64
	}
	var out []sample
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		found := false
		var last sample
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, f := it.At()
			if t > maxt {
				break
			}
			if t >= mint {
				last, found = sample{t: t, f: f}, true
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		if found && !value.IsStaleNaN(last.f) {
			last.ls = s.Labels()
			out = append(out, last)
		}
	}
	if err := set.Err(); err != nil {
		return err
	}
	slices.SortStableFunc(out, func(x, y sample) int {
		return strings.Compare(x.ls.Get(labels.MetricName), y.ls.Get(labels.MetricName))
	})

	// As Prometheus' /federate: the Accept header picks the format and how
	// names outside the legacy character set are written (escaping=
	// allow-utf-8 quotes them; by default they are escaped to underscores).
	format := expfmt.Negotiate(c.Request().Header)
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, string(format))
	w.WriteHeader(http.StatusOK)
	enc := expfmt.NewEncoder(w, format)
	var fam *dto.MetricFamily
	flush := func() error {
		if fam == nil {
			return nil
		}
		return enc.Encode(fam)
	}
	for _, s := range out {
		name := s.ls.Get(labels.MetricName)
		if fam == nil || fam.GetName() != name {
			if err := flush(); err != nil {
				return nil // the client went away; the status is sent already
			}
			fam = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
		}
		m := &dto.Metric{Untyped: &dto.Untyped{Value: proto.Float64(s.f)}, TimestampMs: proto.Int64(s.t)}
		hasInstance := false
		s.ls.Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
				return
			}
			hasInstance = hasInstance || l.Name == model.InstanceLabel
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		})
		if !hasInstance {
			// Last, not in order: Prometheus appends external labels so.
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(model.InstanceLabel), Value: proto.String("")})
		}
		fam.Metric = append(fam.Metric, m)
	}
	_ = flush()
	return nil
}

// export streams every float sample of the matching series between start
// and end (default: all time) as JSON lines in VictoriaMetrics' format,
// which /api/v1/import reads back: one series a line,
// {"metric":{…},"values":[…],"timestamps":[…]}, values that JSON cannot
// hold as the strings "NaN", "+Inf", "-Inf". Stale markers are left out.
// Each series is written as it is read, so the answer is never held whole
// in memory; an error after the first line ends the stream early, which
// the client sees as a truncated body.
func (a *API) export(c echo.Context) error {
	mint, maxt, err := timeRange(c)
	if err != nil {
		return err
	}
	q, err := a.queryable.Querier(mint, maxt)
	if err != nil {
		return err
	}
	defer q.Close()
	set, err := a.mergedSelect(c, q, &storage.SelectHints{Start: mint, End: maxt})
	if err != nil {
		return err
	}
	w := c.Response()
	bw := bufio.NewWriterSize(w, 64<<10)
	started := false
	var it chunkenc.Iterator
	var ts []int64
	var vs []float64
	var line []byte
	for set.Next() {
		if err := c.Request().Context().Err(); err != nil {
			return nil
		}
		s := set.At()
		it = s.Iterator(it)
		ts, vs = ts[:0], vs[:0]
		for vt := it.Seek(mint); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, f := it.At()
			if t > maxt {
				break
			}
			if value.IsStaleNaN(f) {
				continue
			}
			ts, vs = append(ts, t), append(vs, f)
		}
		if err := it.Err(); err != nil {
			if !started {
				return err
			}
			break
		}
		if len(ts) == 0 {
			continue
		}
		if !started {
			w.Header().Set(echo.HeaderContentType, "application/stream+json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		line = appendExportLine(line[:0], s.Labels(), vs, ts)
		if _, err := bw.Write(line); err != nil {
			return nil
		}
	}
	if err := set.Err(); err != nil && !started {
		return err
	}
	if !started {
		w.Header().Set(echo.HeaderContentType, "application/stream+json")
		w.WriteHeader(http.StatusOK)
	}
	_ = bw.Flush()
	return nil
}

func appendExportLine(dst []byte, ls labels.Labels, vs []float64, ts []int64) []byte {
	dst = append(dst, `{"metric":`...)
	dst = appendLabels(dst, ls)
	dst = append(dst, `,"values":[`...)
	for i, f := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch {
		case math.IsNaN(f):
			dst = append(dst, `"NaN"`...)
		case math.IsInf(f, 1):
			dst = append(dst, `"+Inf"`...)
		case math.IsInf(f, -1):
			dst = append(dst, `"-Inf"`...)
		default:
			dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		}
	}
	dst = append(dst, `],"timestamps":[`...)
	for i, t := range ts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, t, 10)
	}
	return append(dst, "]}\n"...)
}
