package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// DecodePromText decodes a body in the Prometheus text exposition format
// (version 0.0.4), as a client library serves it on /metrics, or in
// OpenMetrics 1.0 text.
//
// contentType is the request's Content-Type. application/openmetrics-text
// selects OpenMetrics (decodeOpenMetrics); the protobuf exposition format
// fails with ErrUnsupported; any other type, or none, is read as the
// Prometheus text format, as VictoriaMetrics does: curl's --data-binary
// sends application/x-www-form-urlencoded, and a push script should not
// have to know better. A missing final newline is tolerated. Samples
// without a timestamp get defaultTS.
//
// Every metric type becomes float series the way Prometheus names them when
// it scrapes: counters, gauges and untyped metrics keep their name;
// a summary becomes <name>{quantile="q"} per quantile plus <name>_sum and
// <name>_count; a classic histogram becomes <name>_bucket{le="b"} per
// bucket plus <name>_sum and <name>_count. quantile and le values are
// normalised as Prometheus 3 does (le="1" becomes le="1.0"). _sum and
// _count are emitted only when present in the body. Limitations inherited
// from the expfmt parser: the samples of one summary or histogram share one
// timestamp (the last one given), and a summary's _count is truncated to an
// integer.
//
// Syntax errors are *Error values naming the line; validation errors name
// the series (Line 0, since expfmt does not keep line numbers).
func DecodePromText(body []byte, contentType string, defaultTS time.Time, lim Limits) (*Batch, error) {
	openMetrics, err := textFormat(contentType)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newError(ErrEmptyBody, "empty body")
	}
	if body[len(body)-1] != '\n' {
		// Both parsers need the last line ended; the body is the caller's.
		body = append(body[:len(body):len(body)], '\n')
	}
	if openMetrics {
		return decodeOpenMetrics(body, defaultTS, lim)
	}
	scheme := model.UTF8Validation
	if lim.LegacyNames {
		scheme = model.LegacyValidation
	}
	p := expfmt.NewTextParser(scheme)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		var pe expfmt.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Line: pe.Line, Msg: pe.Msg, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
		}
		return nil, malformed(err, "parse text exposition: %v", err)
	}

	b := getBuilder(lim)
	defer b.release()
	c := textConverter{b: b, defaultTS: defaultTS.UnixMilli()}
	// Families come in a map; sort them so batches are deterministic.
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := c.family(families[name]); err != nil {
			return nil, err
		}
	}
	return b.batch(), nil
}

// textFormat reports whether contentType names OpenMetrics; it refuses
// the protobuf exposition format, which Strata does not read, and a
// Content-Type that does not parse.
func textFormat(contentType string) (openMetrics bool, err error) {
	if contentType == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, newError(ErrUnsupported, fmt.Sprintf("invalid content type %q: %v", contentType, err))
	}
	switch mt {
	case "application/openmetrics-text":
		return true, nil
	case "application/vnd.google.protobuf":
		return false, newError(ErrUnsupported, fmt.Sprintf("content type %q is not supported: send the Prometheus text format or OpenMetrics text", mt))
	}
	return false, nil
}

// decodeOpenMetrics decodes OpenMetrics 1.0 text with Prometheus' own
// parser: every sample line becomes a float series as Prometheus stores it
// when it scrapes OpenMetrics (_created series are left out, as Prometheus
// leaves them out by default); exemplars are not kept. The body must end
// with "# EOF".
func decodeOpenMetrics(body []byte, defaultTS time.Time, lim Limits) (*Batch, error) {
	b := getBuilder(lim)
	defer b.release()
	p := textparse.NewOpenMetricsParser(body, labels.NewSymbolTable(), textparse.WithOMParserSTSeriesSkipped())
	var ls labels.Labels
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, malformed(err, "parse OpenMetrics text: %v", err)
		}
		if et != textparse.EntrySeries {
			continue
		}
		_, ts, v := p.Series()
		t := defaultTS.UnixMilli()
		if ts != nil {
			t = *ts
		}
		p.Labels(&ls)
		b.resetLabels()
		ls.Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
				b.setName(l.Value)
			} else {
				b.addLabel(l.Name, l.Value)
			}
		})
		b.finishLabels()
		ref, err := b.seriesRef()
		if err != nil {
			return nil, err
		}
		if err := b.add(ref, t, v); err != nil {
			return nil, err
		}
	}
	return b.batch(), nil
}

// textConverter turns metric families into builder series.
type textConverter struct {
	b         *builder
	defaultTS int64
}

func (c *textConverter) family(mf *dto.MetricFamily) error {
	name := mf.GetName()
	for _, m := range mf.GetMetric() {
		ts := c.defaultTS
		if m.TimestampMs != nil {
			ts = m.GetTimestampMs()
		}
		var err error
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			err = c.sample(name, m, "", "", ts, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			err = c.sample(name, m, "", "", ts, m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			err = c.sample(name, m, "", "", ts, m.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			err = c.summary(name, m, ts)
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			err = c.histogram(name, m, ts)
		default:
			err = newError(ErrUnsupported, fmt.Sprintf("metric %q has unsupported type %s", truncate(name), mf.GetType()))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *textConverter) summary(name string, m *dto.Metric, ts int64) error {
	s := m.GetSummary()
	for _, q := range s.GetQuantile() {
		err := c.sample(name, m, model.QuantileLabel, labels.FormatOpenMetricsFloat(q.GetQuantile()), ts, q.GetValue())
		if err != nil {
			return err
		}
	}
	if s.SampleSum != nil {
		if err := c.sample(name+"_sum", m, "", "", ts, s.GetSampleSum()); err != nil {
			return err
		}
	}
	if s.SampleCount != nil {
		return c.sample(name+"_count", m, "", "", ts, float64(s.GetSampleCount()))
	}
	return nil
}

func (c *textConverter) histogram(name string, m *dto.Metric, ts int64) error {
	h := m.GetHistogram()
	for _, bk := range h.GetBucket() {
		count := float64(bk.GetCumulativeCount())
		if bk.CumulativeCountFloat != nil {
			count = bk.GetCumulativeCountFloat()
		}
		err := c.sample(name+"_bucket", m, model.BucketLabel, labels.FormatOpenMetricsFloat(bk.GetUpperBound()), ts, count)
		if err != nil {
			return err
		}
	}
	if h.SampleSum != nil {
		if err := c.sample(name+"_sum", m, "", "", ts, h.GetSampleSum()); err != nil {
			return err
		}
	}
	if h.SampleCount != nil || h.SampleCountFloat != nil {
		count := float64(h.GetSampleCount())
		if h.SampleCountFloat != nil {
			count = h.GetSampleCountFloat()
		}
		return c.sample(name+"_count", m, "", "", ts, count)
	}
	return nil
}

// sample adds one sample of series name{m's labels, extraName=extraValue}.
func (c *textConverter) sample(name string, m *dto.Metric, extraName, extraValue string, ts int64, v float64) error {
	b := c.b
	b.resetLabels()
	b.setName(name)
	for _, lp := range m.GetLabel() {
		b.addLabel(lp.GetName(), lp.GetValue())
	}
	if extraName != "" {
		b.addLabel(extraName, extraValue)
	}
	b.finishLabels()
	ref, err := b.seriesRef()
	if err != nil {
		return err
	}
	return b.add(ref, ts, v)
}
