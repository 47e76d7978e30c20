package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	prw "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// OTLP body encodings, as the OTLP/HTTP specification names them.
const (
	OTLPProtobuf = "application/x-protobuf"
	OTLPJSON     = "application/json"
)

// OTLPOptions says how OTLP metrics become Prometheus series. The fields
// mirror the otlp: section of Prometheus' configuration, and the conversion
// is Prometheus' own (storage/remote/otlptranslator), so a metric gets the
// same name, labels, suffixes and target_info series as in Prometheus 3.
type OTLPOptions struct {
	// TranslationStrategy is one of otlptranslator's strategies:
	// UnderscoreEscapingWithSuffixes (Prometheus' default; empty means it),
	// UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or
	// NoTranslation. The last two keep dots and other characters in names,
	// which needs UTF-8 name validation.
	TranslationStrategy string
	// PromoteResourceAttributes are the resource attributes copied onto
	// every series of the resource as labels.
	PromoteResourceAttributes []string
	// PromoteAllResourceAttributes promotes every resource attribute except
	// those in IgnoreResourceAttributes; it excludes
	// PromoteResourceAttributes.
	PromoteAllResourceAttributes bool
	// IgnoreResourceAttributes are left out when
	// PromoteAllResourceAttributes is set.
	IgnoreResourceAttributes []string
	// KeepIdentifyingResourceAttributes keeps service.name,
	// service.namespace and service.instance.id on target_info as well as in
	// job and instance.
	KeepIdentifyingResourceAttributes bool
	// ConvertHistogramsToNHCB stores explicit-bucket histograms as native
	// histograms with custom buckets instead of classic _bucket, _sum and
	// _count series.
	ConvertHistogramsToNHCB bool
	// PromoteScopeMetadata adds the otel_scope_* labels of the
	// instrumentation scope.
	PromoteScopeMetadata bool
	// LookbackDelta is the query lookback delta; target_info gets a sample
	// every half of it between a resource's first and last data point, as in
	// Prometheus. Zero means Prometheus' 5m.
	LookbackDelta time.Duration
}

// DefaultOTLPOptions returns Prometheus 3's defaults.
func DefaultOTLPOptions() OTLPOptions {
	return OTLPOptions{TranslationStrategy: string(otlptranslator.UnderscoreEscapingWithSuffixes)}
}

// OTLPTranslationStrategies lists the accepted TranslationStrategy values.
var OTLPTranslationStrategies = []string{
	string(otlptranslator.UnderscoreEscapingWithSuffixes),
	string(otlptranslator.UnderscoreEscapingWithoutSuffixes),
	string(otlptranslator.NoUTF8EscapingWithSuffixes),
	string(otlptranslator.NoTranslation),
}

// Validate reports the first setting that Prometheus would refuse too.
func (o OTLPOptions) Validate() error {
	if o.TranslationStrategy != "" && !slices.Contains(OTLPTranslationStrategies, o.TranslationStrategy) {
		return fmt.Errorf("otlp: translation strategy %q: must be one of %s", o.TranslationStrategy, strings.Join(OTLPTranslationStrategies, ", "))
	}
	if o.PromoteAllResourceAttributes && len(o.PromoteResourceAttributes) > 0 {
		return errors.New("otlp: promote_all_resource_attributes and promote_resource_attributes cannot both be set")
	}
	if !o.PromoteAllResourceAttributes && len(o.IgnoreResourceAttributes) > 0 {
		return errors.New("otlp: ignore_resource_attributes needs promote_all_resource_attributes")
	}
	for _, list := range [][]string{o.PromoteResourceAttributes, o.IgnoreResourceAttributes} {
		seen := map[string]bool{}
		for _, a := range list {
			if strings.TrimSpace(a) == "" {
				return errors.New("otlp: empty resource attribute name")
			}
			if seen[a] {
				return fmt.Errorf("otlp: resource attribute %q listed twice", a)
			}
			seen[a] = true
		}
	}
	if o.LookbackDelta < 0 {
		return errors.New("otlp: negative lookback delta")
	}
	return nil
}

// KeepsUTF8 reports whether the strategy leaves names unescaped, so that
// stored names may hold any UTF-8 character.
func (o OTLPOptions) KeepsUTF8() bool {
	return !o.strategy().ShouldEscape()
}

func (o OTLPOptions) strategy() otlptranslator.TranslationStrategyOption {
	if o.TranslationStrategy == "" {
		return otlptranslator.UnderscoreEscapingWithSuffixes
	}
	return otlptranslator.TranslationStrategyOption(o.TranslationStrategy)
}

// settings maps o onto the translator's settings the way Prometheus'
// OTLP write handler does.
func (o OTLPOptions) settings() prw.Settings {
	s := o.strategy()
	return prw.Settings{
		AddMetricSuffixes: s.ShouldAddSuffixes(),
		AllowUTF8:         !s.ShouldEscape(),
		PromoteResourceAttributes: prw.NewPromoteResourceAttributes(config.OTLPConfig{
			PromoteAllResourceAttributes: o.PromoteAllResourceAttributes,
			PromoteResourceAttributes:    o.PromoteResourceAttributes,
			IgnoreResourceAttributes:     o.IgnoreResourceAttributes,
		}),
		KeepIdentifyingResourceAttributes: o.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:           o.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:              o.PromoteScopeMetadata,
		LookbackDelta:                     o.LookbackDelta,
		// Prometheus' defaults (config.DefaultOTLPConfig), kept for
		// backwards compatibility there and so here.
		LabelNameUnderscoreSanitization:      true,
		LabelNamePreserveMultipleUnderscores: true,
	}
}

// OTLPResult is what an OTLP request was not stored for, to be answered in
// the OTLP partial-success response.
type OTLPResult struct {
	// Rejected is the number of data points refused.
	Rejected int
	// Message says why, naming the metrics; empty when Rejected is 0.
	Message string
	// Warnings are the translator's warnings (empty data points, label
	// names that collide after escaping, ...).
	Warnings []string
	// DroppedExemplars is the number of exemplars left out because
	// Prometheus would refuse them (labels over 128 runes, say); their
	// data points are stored.
	DroppedExemplars int
}

// DecodeOTLP decodes an OTLP/HTTP ExportMetricsServiceRequest (contentType
// OTLPProtobuf or OTLPJSON; the body already decompressed) and converts it
// with Prometheus' translator under opts.
//
// Sums and histograms with delta (or unspecified) aggregation temporality
// are refused data point by data point: they are counted in the result and
// not stored, never stored as if cumulative, and the rest of the request is
// kept. If every data point is refused the error wraps ErrUnsupported. Any
// other problem (a body that does not decode, a series that fails
// validation or the limits, a data point the translator refuses) fails the
// whole request with an *Error, as in every other format.
func DecodeOTLP(ctx context.Context, body []byte, contentType string, opts OTLPOptions, lim Limits) (*Batch, OTLPResult, error) {
	var res OTLPResult
	if len(body) == 0 {
		return nil, res, newError(ErrEmptyBody, "empty body")
	}
	req := pmetricotlp.NewExportRequest()
	switch contentType {
	case OTLPProtobuf:
		if err := req.UnmarshalProto(body); err != nil {
			return nil, res, malformed(err, "decode OTLP protobuf: %v", err)
		}
	case OTLPJSON:
		if err := req.UnmarshalJSON(body); err != nil {
			return nil, res, malformed(err, "decode OTLP JSON: %v", err)
		}
	default:
		return nil, res, newError(ErrUnsupported, fmt.Sprintf("unsupported OTLP content type %q: send %s or %s", contentType, OTLPProtobuf, OTLPJSON))
	}
	md := req.Metrics()
	res = dropNonCumulative(md)
	total := md.DataPointCount()
	if total == 0 && res.Rejected > 0 {
		return nil, res, newError(ErrUnsupported, res.Message)
	}

	b := getBuilder(lim)
	defer b.release()
	app := &otlpAppender{b: b}
	conv := prw.NewPrometheusConverter(app)
	annots, err := conv.FromMetrics(ctx, md, opts.settings())
	switch {
	case app.err != nil:
		// Our own refusal (validation, limits) comes first: it names the
		// series.
		return nil, res, app.err
	case err != nil:
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, res, ctxErr
		}
		return nil, res, newError(ErrUnsupported, "convert OTLP metrics: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	res.Warnings, _ = annots.AsStrings("", 0, 0)
	res.DroppedExemplars = app.droppedExemplars
	if total == 0 {
		return nil, res, newError(ErrEmptyBody, "OTLP request holds no data point")
	}
	return b.batch(), res, nil
}

// dropNonCumulative removes from md the metrics whose temporality is not
// cumulative, which Prometheus refuses too (and would otherwise store as if
// cumulative, making rate() wrong), and returns what it removed.
func dropNonCumulative(md pmetric.Metrics) OTLPResult {
	var (
		res   OTLPResult
		names []string
	)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sms.At(j).Metrics().RemoveIf(func(m pmetric.Metric) bool {
				var (
					t pmetric.AggregationTemporality
					n int
				)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					t, n = m.Sum().AggregationTemporality(), m.Sum().DataPoints().Len()
				case pmetric.MetricTypeHistogram:
					t, n = m.Histogram().AggregationTemporality(), m.Histogram().DataPoints().Len()
				case pmetric.MetricTypeExponentialHistogram:
					t, n = m.ExponentialHistogram().AggregationTemporality(), m.ExponentialHistogram().DataPoints().Len()
				default:
					return false
				}
				if t == pmetric.AggregationTemporalityCumulative {
					return false
				}
				res.Rejected += n
				if len(names) < 10 {
					names = append(names, fmt.Sprintf("%q (%s %s)", truncate(m.Name()), strings.ToLower(t.String()), m.Type()))
				}
				return true
			})
		}
	}
	if res.Rejected > 0 {
		res.Message = fmt.Sprintf("%d data points refused: only cumulative temporality is stored (set the exporter's temporality preference to cumulative); metrics: %s", res.Rejected, strings.Join(names, ", "))
	}
	return res
}

// otlpAppender receives the translator's series and samples into a
// builder. It keeps the first error it returns: the translator goes on with
// the next metric after an error, but the request is refused whole.
type otlpAppender struct {
	b                *builder
	err              error
	droppedExemplars int
}

var _ storage.AppenderV2 = (*otlpAppender)(nil)

// Append adds one float or histogram sample of ls, its exemplars and its
// family's metadata (type, unit, help) to the batch. The start timestamp is
// not kept: Prometheus 3 writes no zero sample for it unless its
// created-timestamp-zero-ingestion feature is on. An exemplar Prometheus
// would refuse (labels over 128 runes, an invalid label name) is dropped,
// as Prometheus drops it, and counted; the sample is kept.
func (a *otlpAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if a.err != nil {
		return 0, a.err
	}
	b := a.b
	b.resetLabels()
	ls.Range(func(l labels.Label) { b.addLabel(l.Name, l.Value) })
	b.finishLabels()
	ref, err := b.seriesRef()
	if err == nil {
		if h != nil || fh != nil {
			err = b.addHistogram(ref, t, h, fh)
		} else {
			err = b.add(ref, t, v)
		}
	}
	for i := 0; err == nil && i < len(opts.Exemplars); i++ {
		err = a.addExemplar(ref, &opts.Exemplars[i])
	}
	if err != nil {
		a.err = err
		return 0, err
	}
	b.addMetadata(opts.MetricFamilyName, Metadata{Type: opts.Metadata.Type, Unit: opts.Metadata.Unit, Help: opts.Metadata.Help})
	return storage.SeriesRef(ref) + 1, nil
}

// addExemplar adds one exemplar of series ref, dropping (and counting) one
// Prometheus would refuse.
func (a *otlpAppender) addExemplar(ref int32, e *exemplar.Exemplar) error {
	b := a.b
	b.exsb.Reset()
	e.Labels.Range(func(l labels.Label) {
		if l.Value != "" {
			b.exsb.Add(l.Name, l.Value)
		}
	})
	t := int64(0)
	if e.HasTs {
		t = e.Ts
	}
	err := b.addExemplar(ref, t, e.Value)
	if errors.Is(err, ErrInvalidExemplar) {
		a.droppedExemplars++
		return nil
	}
	return err
}

// Commit does nothing: the caller stores the batch.
func (*otlpAppender) Commit() error { return nil }

// Rollback does nothing: nothing is stored until the caller does.
func (*otlpAppender) Rollback() error { return nil }
