package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
)

// A hand-written reader for the few protobuf messages of remote write 1.0
// (prometheus/prompb types.proto and remote.proto):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
//	               repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
//	Histogram    { oneof count { uint64 count_int = 1; double count_float = 2; }
//	               double sum = 3; sint32 schema = 4; double zero_threshold = 5;
//	               oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
//	               repeated BucketSpan negative_spans = 8; repeated sint64 negative_deltas = 9;
//	               repeated double negative_counts = 10; repeated BucketSpan positive_spans = 11;
//	               repeated sint64 positive_deltas = 12; repeated double positive_counts = 13;
//	               ResetHint reset_hint = 14; int64 timestamp = 15; repeated double custom_values = 16; }
//	BucketSpan   { sint32 offset = 1; uint32 length = 2; }
//
// It exists for speed: prompb's generated Unmarshal allocates every label
// string and grows every slice, about 20 allocations per series, which
// made it the bulk of decoding time. This reader hands the builder label
// strings that alias the decompressed buffer and samples directly, so a
// request costs a few allocations per new series (its Labels and key) and
// none per sample. It follows gogo-protobuf's generated code on what is an
// error (truncation, bad lengths, a known field with the wrong wire type,
// varints over 10 bytes, unbalanced groups); the differential fuzz target
// checks it against prompb. Exemplars and metadata are read into the
// Batch like samples.
// Histograms are decoded into fresh model/histogram values (they allocate
// anyway, and the Batch must not alias the request), converted the way
// prompb's ToIntHistogram and ToFloatHistogram do.

var (
	errPBTruncated = fmt.Errorf("proto: %w", io.ErrUnexpectedEOF)
	errPBOverflow  = errors.New("proto: integer overflow")
	errPBLength    = errors.New("proto: negative length found during unmarshaling")
	errPBEndGroup  = errors.New("proto: unexpected end of group")
)

// pbVarint reads a varint at b[i:] the way gogo-protobuf does: at most 10
// bytes, bits past the 64th dropped. The one-byte case (field keys, label
// lengths) is inlined into callers.
func pbVarint(b []byte, i int) (uint64, int, error) {
	if uint(i) < uint(len(b)) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	return pbVarintSlow(b, i)
}

//go:noinline
func pbVarintSlow(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errPBOverflow
		}
		if i >= len(b) {
			return 0, 0, errPBTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
}

// pbKey reads a field key at b[i:]. A valid one-byte key (fields 1 to 15)
// is read inline; everything else, errors included, by pbKeySlow.
func pbKey(b []byte, i int, msg string) (field int32, wireType int, next int, err error) {
	if uint(i) < uint(len(b)) {
		if c := b[i]; c < 0x80 && c>>3 != 0 && c&7 != 4 {
			return int32(c >> 3), int(c & 7), i + 1, nil
		}
	}
	return pbKeySlow(b, i, msg)
}

//go:noinline
func pbKeySlow(b []byte, i int, msg string) (field int32, wireType int, next int, err error) {
	k, next, err := pbVarint(b, i)
	if err != nil {
		return 0, 0, 0, err
	}
	field, wireType = int32(k>>3), int(k&7)
	if wireType == 4 {
		return 0, 0, 0, fmt.Errorf("proto: %s: wiretype end group for non-group", msg)
	}
	if field <= 0 {
		return 0, 0, 0, fmt.Errorf("proto: %s: illegal tag %d (wire type %d)", msg, field, k)
	}
	return field, wireType, next, nil
}

// pbBytes reads a length-delimited value at b[i:].
func pbBytes(b []byte, i int) ([]byte, int, error) {
	n, i, err := pbVarint(b, i)
	if err != nil {
		return nil, 0, err
	}
	end := i + int(n)
	if int(n) < 0 || end < 0 {
		return nil, 0, errPBLength
	}
	if end > len(b) {
		return nil, 0, errPBTruncated
	}
	return b[i:end], end, nil
}

// pbSkip skips the field whose key starts at b[i:], groups included, and
// returns the index after it.
func pbSkip(b []byte, i int) (int, error) {
	depth := 0
	for {
		k, j, err := pbVarint(b, i)
		if err != nil {
			return 0, err
		}
		i = j
		switch wt := int(k & 7); wt {
		case 0:
			if _, i, err = pbVarint(b, i); err != nil {
				return 0, err
			}
		case 1:
			i += 8
		case 2:
			n, j, err := pbVarint(b, i)
			if err != nil {
				return 0, err
			}
			if int(n) < 0 {
				return 0, errPBLength
			}
			i = j + int(n)
		case 3:
			depth++
		case 4:
			if depth == 0 {
				return 0, errPBEndGroup
			}
			depth--
		case 5:
			i += 4
		default:
			return 0, fmt.Errorf("proto: illegal wireType %d", wt)
		}
		if i < 0 {
			return 0, errPBLength
		}
		if i > len(b) {
			return 0, errPBTruncated
		}
		if depth == 0 {
			return i, nil
		}
	}
}

// pbDouble reads a fixed 8-byte double at b[i:].
func pbDouble(b []byte, i int) (float64, int, error) {
	if i+8 > len(b) {
		return 0, 0, errPBTruncated
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b[i:])), i + 8, nil
}

func errWireType(wt int, field string) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wt, field)
}

// decodeWriteRequest feeds the series and samples of a marshalled
// WriteRequest to b. Protobuf errors are returned as they are (the caller
// wraps them); validation and limit errors come back as *Error.
func decodeWriteRequest(raw []byte, b *builder) error {
	if b.cache != nil {
		return decodeWriteRequestCached(raw, b)
	}
	for i := 0; i < len(raw); {
		field, wt, next, err := pbKey(raw, i, "WriteRequest")
		if err != nil {
			return err
		}
		if field != 1 && field != 3 {
			if i, err = pbSkip(raw, i); err != nil {
				return err
			}
			continue
		}
		if wt != 2 {
			return errWireType(wt, [...]string{"", "Timeseries", "", "Metadata"}[field])
		}
		var msg []byte
		if msg, i, err = pbBytes(raw, next); err != nil {
			return err
		}
		if field == 3 {
			family, md, err := decodeMetricMetadata(msg)
			if err != nil {
				return err
			}
			b.addMetadata(family, md)
			continue
		}
		if err := decodeTimeSeries(msg, b); err != nil {
			return err
		}
	}
	return nil
}

// writeField is a TimeSeries (1) or MetricMetadata (3) field of a
// WriteRequest, read ahead by decodeWriteRequestCached; for a TimeSeries,
// where its label fields end (labelFieldsEnd), their key in the cache and
// the entry found in its first slot.
type writeField struct {
	field int32
	msg   []byte
	end   int
	key   uint64
	first *cachedSeries
}

// cachedAhead is how many fields decodeWriteRequestCached reads ahead.
const cachedAhead = 32

// decodeWriteRequestCached is decodeWriteRequest with b.cache: it reads
// the fields cachedAhead at a time, looks their series up in the cache
// before it decodes them, and loads the entries it found, in loops whose
// loads do not wait on each other. A lookup is mostly waiting for memory
// (a slot, an entry, its labels: three places about the table), and a
// processor overlaps those waits only within a short loop. Errors are
// those of decodeWriteRequest, in the same order.
func decodeWriteRequestCached(raw []byte, b *builder) error {
	ahead := b.ahead[:0]
	var ferr error // where reading the fields stopped
	for i := 0; i < len(raw); {
		field, wt, next, err := pbKey(raw, i, "WriteRequest")
		if err != nil {
			ferr = err
			break
		}
		if field != 1 && field != 3 {
			if i, err = pbSkip(raw, i); err != nil {
				ferr = err
				break
			}
			continue
		}
		if wt != 2 {
			ferr = errWireType(wt, [...]string{"", "Timeseries", "", "Metadata"}[field])
			break
		}
		var msg []byte
		if msg, i, err = pbBytes(raw, next); err != nil {
			ferr = err
			break
		}
		if ahead = append(ahead, writeField{field: field, msg: msg}); len(ahead) == cachedAhead {
			if err := decodeAhead(ahead, b); err != nil {
				return err
			}
			ahead = ahead[:0]
		}
	}
	err := decodeAhead(ahead, b)
	clear(ahead) // do not keep request memory alive from the pool
	b.ahead = ahead[:0]
	if err != nil {
		return err
	}
	return ferr
}

// decodeAhead decodes fields read ahead, in order.
func decodeAhead(fields []writeField, b *builder) error {
	c := b.cache
	for k := range fields {
		f := &fields[k]
		if f.field != 1 {
			continue
		}
		if f.end = labelFieldsEnd(f.msg); f.end > 0 {
			f.key = c.key(f.msg[:f.end])
		}
	}
	// Loads only, so that many are under way at once.
	for k := range fields {
		if f := &fields[k]; f.end > 0 {
			f.first = c.slots[f.key&c.mask].Load()
		}
	}
	var sink byte
	slots := b.index.slots
	for k := range fields {
		if e := fields[k].first; e != nil && e.key == fields[k].key {
			// The label bytes, for the comparison to come, and the
			// request's index slot where findSeries will look the
			// series up (the index of a pooled builder was last
			// written by another request, maybe on another core).
			r := e.raw
			sink ^= r[0] ^ r[len(r)-1]
			if len(slots) > 0 {
				sink ^= byte(slots[(e.hash&indexMask)&uint64(len(slots)-1)].tag)
			}
		}
	}
	b.sink ^= sink
	for k := range fields {
		f := &fields[k]
		if f.field == 3 {
			family, md, err := decodeMetricMetadata(f.msg)
			if err != nil {
				return err
			}
			b.addMetadata(family, md)
			continue
		}
		if err := decodeTimeSeriesKeyed(f.msg, f.end, f.key, b); err != nil {
			return err
		}
	}
	return nil
}

// metricTypes maps the MetricType enum of both remote write versions (the
// same numbers) to Prometheus' names; unknown numbers are "unknown".
var metricTypes = [...]model.MetricType{model.MetricTypeUnknown, model.MetricTypeCounter, model.MetricTypeGauge, model.MetricTypeHistogram,
	model.MetricTypeGaugeHistogram, model.MetricTypeSummary, model.MetricTypeInfo, model.MetricTypeStateset}

func metricType(v uint64) model.MetricType {
	if e := int32(v); e >= 0 && int(e) < len(metricTypes) {
		return metricTypes[e]
	}
	return model.MetricTypeUnknown
}

// decodeMetricMetadata reads a MetricMetadata { MetricType type = 1;
// string metric_family_name = 2; string help = 4; string unit = 5; }. The
// strings alias msg.
func decodeMetricMetadata(msg []byte) (family string, md Metadata, err error) {
	md.Type = model.MetricTypeUnknown
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "MetricMetadata")
		if err != nil {
			return "", md, err
		}
		switch field {
		case 1:
			if wt != 0 {
				return "", md, errWireType(wt, "Type")
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return "", md, err
			}
			md.Type = metricType(u)
		case 2, 4, 5:
			if wt != 2 {
				return "", md, errWireType(wt, [...]string{"", "", "MetricFamilyName", "", "Help", "Unit"}[field])
			}
			var v []byte
			if v, i, err = pbBytes(msg, next); err != nil {
				return "", md, err
			}
			switch field {
			case 2:
				family = yoloString(v)
			case 4:
				md.Help = yoloString(v)
			case 5:
				md.Unit = yoloString(v)
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return "", md, err
			}
		}
	}
	return family, md, nil
}

// decodeTimeSeries reads one TimeSeries in two passes, since protobuf lets
// labels and samples come in any order: labels first, then samples and
// histograms.
func decodeTimeSeries(msg []byte, b *builder) error {
	return decodeTimeSeriesKeyed(msg, -1, 0, b)
}

// decodeTimeSeriesKeyed is decodeTimeSeries given, with b.cache, where
// the label fields end (labelFieldsEnd; -1: not where they can be
// cached) and their key in the cache: a series found there skips pass
// one.
func decodeTimeSeriesKeyed(msg []byte, labelsEnd int, key uint64, b *builder) error {
	if labelsEnd > 0 {
		e := b.cache.lookup(key, msg[:labelsEnd])
		b.cacheLookups++
		if e != nil {
			b.cacheHits++
			ref, err := b.cachedRef(e)
			if err != nil {
				return err
			}
			return decodeSeriesData(msg, labelsEnd, ref, b)
		}
	}
	b.resetLabels()
	// rest is where the first field other than a label starts: pass two
	// starts there, as it skips labels anyway.
	rest := -1
	for i := 0; i < len(msg); {
		// The common case, a label shorter than 128 bytes, inline.
		if msg[i] == 0x0a && i+1 < len(msg) && msg[i+1] < 0x80 {
			if end := i + 2 + int(msg[i+1]); end <= len(msg) {
				name, value, err := decodeLabel(msg[i+2 : end])
				if err != nil {
					return err
				}
				b.addLabel(name, value)
				i = end
				continue
			}
		}
		field, wt, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
		}
		if field != 1 && rest < 0 {
			rest = i
		}
		switch field {
		case 1, 2, 3, 4:
			if wt != 2 {
				return errWireType(wt, [...]string{"", "Labels", "Samples", "Exemplars", "Histograms"}[field])
			}
			var v []byte
			if v, i, err = pbBytes(msg, next); err != nil {
				return err
			}
			if field == 1 {
				name, value, err := decodeLabel(v)
				if err != nil {
					return err
				}
				b.addLabel(name, value)
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
		}
	}
	b.finishLabels()
	// A series is validated, and counts against the series limit, even
	// when it carries no samples.
	ref, err := b.seriesRef()
	if err != nil {
		return err
	}
	if labelsEnd > 0 && b.lookedUp {
		// A series the store had before this request: the next ones
		// find it by its label bytes.
		e := &b.series[ref]
		b.cache.remember(msg[:labelsEnd], e.lset, e.hash, e.handle, b.epoch)
	}
	if rest < 0 {
		return nil
	}
	return decodeSeriesData(msg, rest, ref, b)
}

// labelFieldsEnd returns where the label fields of a TimeSeries end when
// they come first and no other follows, and the message holds nothing that
// decodeTimeSeries' first pass refuses; else -1. Its fields are skipped,
// not decoded.
func labelFieldsEnd(msg []byte) int {
	end := -1
	for i := 0; i < len(msg); {
		// A label shorter than 128 bytes, inline.
		if msg[i] == 0x0a && i+1 < len(msg) && msg[i+1] < 0x80 {
			if next := i + 2 + int(msg[i+1]); next <= len(msg) {
				if end >= 0 {
					return -1 // a label after the samples
				}
				i = next
				continue
			}
		}
		field, wt, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return -1
		}
		if field == 1 && end >= 0 {
			return -1
		}
		if field != 1 && end < 0 {
			end = i
		}
		switch field {
		case 1, 2, 3, 4:
			if wt != 2 {
				return -1
			}
			if _, i, err = pbBytes(msg, next); err != nil {
				return -1
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return -1
			}
		}
	}
	if end < 0 {
		return len(msg)
	}
	return end
}

// decodeSeriesData is decodeTimeSeries' second pass: the samples,
// histograms and exemplars of series ref, from rest, where the first field
// other than a label starts. The first pass checked the framing.
func decodeSeriesData(msg []byte, rest int, ref int32, b *builder) error {
	for i := rest; i < len(msg); {
		// Pass one checked the framing, so errors here are unexpected.
		field, _, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
		}
		if field < 2 || field > 4 {
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
			continue
		}
		var v []byte
		if v, i, err = pbBytes(msg, next); err != nil {
			return err
		}
		if field == 3 {
			// A bad exemplar is left out and counted, the samples kept,
			// as Prometheus' write handler does.
			if err := decodeExemplar(v, b, ref); err != nil {
				if !errors.Is(err, ErrInvalidExemplar) {
					return err
				}
				b.droppedEx++
			}
			continue
		}
		if field == 4 {
			t, h, fh, _, err := decodeHistogram(v, false)
			if err != nil {
				return err
			}
			if err := b.addHistogram(ref, t, h, fh); err != nil {
				return err
			}
			continue
		}
		t, val, err := decodeSample(v)
		if err != nil {
			return err
		}
		if err := b.add(ref, t, val); err != nil {
			return err
		}
	}
	return nil
}

// decodeExemplar reads an Exemplar { repeated Label labels = 1; double
// value = 2; int64 timestamp = 3; } of series ref into b.
func decodeExemplar(msg []byte, b *builder, ref int32) error {
	b.exsb.Reset()
	var (
		t int64
		v float64
	)
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Exemplar")
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if wt != 2 {
				return errWireType(wt, "Labels")
			}
			var lv []byte
			if lv, i, err = pbBytes(msg, next); err != nil {
				return err
			}
			name, value, err := decodeLabel(lv)
			if err != nil {
				return err
			}
			if value != "" {
				b.exsb.Add(name, value)
			}
		case 2:
			if wt != 1 {
				return errWireType(wt, "Value")
			}
			if v, i, err = pbDouble(msg, next); err != nil {
				return err
			}
		case 3:
			if wt != 0 {
				return errWireType(wt, "Timestamp")
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return err
			}
			t = int64(u)
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
		}
	}
	return b.addExemplar(ref, t, v)
}

// decodeLabel reads a Label. The strings alias msg. The layout every
// sender writes (name, then value, each shorter than 128 bytes, nothing
// else) is read without the general loop.
func decodeLabel(msg []byte) (name, value string, err error) {
	if len(msg) >= 4 && msg[0] == 0x0a && msg[1] < 0x80 {
		n := int(msg[1])
		if v := 2 + n; v+2 <= len(msg) && msg[v] == 0x12 && msg[v+1] < 0x80 && v+2+int(msg[v+1]) == len(msg) {
			return yoloString(msg[2:v]), yoloString(msg[v+2:]), nil
		}
	}
	return decodeLabelSlow(msg)
}

func decodeLabelSlow(msg []byte) (name, value string, err error) {
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Label")
		if err != nil {
			return "", "", err
		}
		if field != 1 && field != 2 {
			if i, err = pbSkip(msg, i); err != nil {
				return "", "", err
			}
			continue
		}
		if wt != 2 {
			return "", "", errWireType(wt, [...]string{"", "Name", "Value"}[field])
		}
		var s []byte
		if s, i, err = pbBytes(msg, next); err != nil {
			return "", "", err
		}
		if field == 1 {
			name = yoloString(s)
		} else {
			value = yoloString(s)
		}
	}
	return name, value, nil
}

// decodeSample reads a Sample. The layout every sender writes (value,
// then timestamp, nothing else) is read without the general loop.
func decodeSample(msg []byte) (t int64, v float64, err error) {
	if len(msg) >= 11 && msg[0] == 0x09 && msg[9] == 0x10 {
		if u, end, err := pbVarint(msg, 10); err == nil && end == len(msg) {
			return int64(u), math.Float64frombits(binary.LittleEndian.Uint64(msg[1:])), nil
		}
	}
	return decodeSampleSlow(msg)
}

func decodeSampleSlow(msg []byte) (t int64, v float64, err error) {
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Sample")
		if err != nil {
			return 0, 0, err
		}
		switch field {
		case 1:
			if wt != 1 {
				return 0, 0, errWireType(wt, "Value")
			}
			if v, i, err = pbDouble(msg, next); err != nil {
				return 0, 0, err
			}
		case 2:
			if wt != 0 {
				return 0, 0, errWireType(wt, "Timestamp")
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return 0, 0, err
			}
			t = int64(u)
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return 0, 0, err
			}
		}
	}
	return t, v, nil
}

// pbHistogram is a Histogram message as read off the wire, before the
// conversion that prompb's ToIntHistogram / ToFloatHistogram make.
type pbHistogram struct {
	countFloat, zeroCountFloat bool // which member of each oneof was set last
	countInt, zeroCountInt     uint64
	countF, zeroCountF         float64
	sum, zeroThreshold         float64
	schema                     int32
	resetHint                  int32
	timestamp                  int64
	startTimestamp             int64 // remote write 2.0 only (field 17)
	negSpans, posSpans         []histogram.Span
	negDeltas, posDeltas       []int64
	negCounts, posCounts       []float64
	customValues               []float64
}

// decodeHistogram reads a Histogram and converts it: an integer histogram
// unless count_float was the last count set, as prompb.IsFloatHistogram
// decides. Spans are never nil, as with prompb's conversion. v2 reads
// remote write 2.0's Histogram, which adds start_timestamp (field 17, st).
func decodeHistogram(msg []byte, v2 bool) (t int64, h *histogram.Histogram, fh *histogram.FloatHistogram, st int64, err error) {
	var p pbHistogram
	if err := p.unmarshal(msg, v2); err != nil {
		return 0, nil, nil, 0, err
	}
	if p.negSpans == nil {
		p.negSpans = []histogram.Span{}
	}
	if p.posSpans == nil {
		p.posSpans = []histogram.Span{}
	}
	if p.countFloat {
		fh = &histogram.FloatHistogram{
			CounterResetHint: histogram.CounterResetHint(p.resetHint),
			Schema:           p.schema,
			ZeroThreshold:    p.zeroThreshold,
			Count:            p.countF,
			Sum:              p.sum,
			PositiveSpans:    p.posSpans,
			PositiveBuckets:  p.posCounts,
			NegativeSpans:    p.negSpans,
			NegativeBuckets:  p.negCounts,
			CustomValues:     p.customValues,
		}
		if p.zeroCountFloat {
			fh.ZeroCount = p.zeroCountF
		}
		return p.timestamp, nil, fh, p.startTimestamp, nil
	}
	h = &histogram.Histogram{
		CounterResetHint: histogram.CounterResetHint(p.resetHint),
		Schema:           p.schema,
		ZeroThreshold:    p.zeroThreshold,
		Count:            p.countInt,
		Sum:              p.sum,
		PositiveSpans:    p.posSpans,
		PositiveBuckets:  p.posDeltas,
		NegativeSpans:    p.negSpans,
		NegativeBuckets:  p.negDeltas,
		CustomValues:     p.customValues,
	}
	if !p.zeroCountFloat {
		h.ZeroCount = p.zeroCountInt
	}
	return p.timestamp, h, nil, p.startTimestamp, nil
}

var histogramFields = [...]string{"", "CountInt", "CountFloat", "Sum", "Schema", "ZeroThreshold", "ZeroCountInt", "ZeroCountFloat",
	"NegativeSpans", "NegativeDeltas", "NegativeCounts", "PositiveSpans", "PositiveDeltas", "PositiveCounts", "ResetHint", "Timestamp", "CustomValues"}

// unmarshal reads a Histogram message the way gogo-protobuf's generated
// code does, packed and unpacked repeated fields alike.
func (p *pbHistogram) unmarshal(msg []byte, v2 bool) error {
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "Histogram")
		if err != nil {
			return err
		}
		if v2 && field == 17 {
			if wt != 0 {
				return errWireType(wt, "StartTimestamp")
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return err
			}
			p.startTimestamp = int64(u)
			continue
		}
		if field < 1 || field > 16 {
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
			continue
		}
		name := histogramFields[field]
		switch field {
		case 1, 4, 6, 14, 15: // varints
			if wt != 0 {
				return errWireType(wt, name)
			}
			var u uint64
			if u, i, err = pbVarint(msg, next); err != nil {
				return err
			}
			switch field {
			case 1:
				p.countInt, p.countFloat = u, false
			case 4:
				p.schema = zigzag32(u)
			case 6:
				p.zeroCountInt, p.zeroCountFloat = u, false
			case 14:
				p.resetHint = int32(u)
			case 15:
				p.timestamp = int64(u)
			}
		case 2, 3, 5, 7: // doubles
			if wt != 1 {
				return errWireType(wt, name)
			}
			if next+8 > len(msg) {
				return errPBTruncated
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(msg[next:]))
			i = next + 8
			switch field {
			case 2:
				p.countF, p.countFloat = v, true
			case 3:
				p.sum = v
			case 5:
				p.zeroThreshold = v
			case 7:
				p.zeroCountF, p.zeroCountFloat = v, true
			}
		case 8, 11: // spans
			if wt != 2 {
				return errWireType(wt, name)
			}
			var v []byte
			if v, i, err = pbBytes(msg, next); err != nil {
				return err
			}
			sp, err := decodeSpan(v)
			if err != nil {
				return err
			}
			if field == 8 {
				p.negSpans = append(p.negSpans, sp)
			} else {
				p.posSpans = append(p.posSpans, sp)
			}
		case 9, 12: // repeated sint64
			dst := &p.negDeltas
			if field == 12 {
				dst = &p.posDeltas
			}
			if i, err = pbRepeatedSint64(msg, next, wt, name, dst); err != nil {
				return err
			}
		case 10, 13, 16: // repeated double
			dst := &p.negCounts
			switch field {
			case 13:
				dst = &p.posCounts
			case 16:
				dst = &p.customValues
			}
			if i, err = pbRepeatedDouble(msg, next, wt, name, dst); err != nil {
				return err
			}
		}
	}
	return nil
}

func zigzag32(u uint64) int32 {
	v := uint32(u)
	return int32(v>>1) ^ -int32(v&1)
}

// pbRepeatedSint64 reads one occurrence of a repeated sint64 field, packed
// (wire type 2) or not (0), whose value starts at msg[i:].
func pbRepeatedSint64(msg []byte, i, wt int, name string, dst *[]int64) (int, error) {
	switch wt {
	case 0:
		u, next, err := pbVarint(msg, i)
		if err != nil {
			return 0, err
		}
		*dst = append(*dst, int64(u>>1)^-int64(u&1))
		return next, nil
	case 2:
		v, next, err := pbBytes(msg, i)
		if err != nil {
			return 0, err
		}
		if len(*dst) == 0 && len(v) > 0 {
			n := 0
			for _, c := range v {
				if c < 0x80 {
					n++
				}
			}
			*dst = make([]int64, 0, n)
		}
		for j := 0; j < len(v); {
			var u uint64
			if u, j, err = pbVarint(v, j); err != nil {
				return 0, err
			}
			*dst = append(*dst, int64(u>>1)^-int64(u&1))
		}
		return next, nil
	}
	return 0, errWireType(wt, name)
}

// pbRepeatedDouble reads one occurrence of a repeated double field, packed
// (wire type 2) or not (1), whose value starts at msg[i:]. Like gogo's
// generated code, a packed run whose length is not a multiple of 8 reads
// its last value past the run, bounded by the message, and carries on
// after that value.
func pbRepeatedDouble(msg []byte, i, wt int, name string, dst *[]float64) (int, error) {
	switch wt {
	case 1:
		if i+8 > len(msg) {
			return 0, errPBTruncated
		}
		*dst = append(*dst, math.Float64frombits(binary.LittleEndian.Uint64(msg[i:])))
		return i + 8, nil
	case 2:
		v, end, err := pbBytes(msg, i)
		if err != nil {
			return 0, err
		}
		j := end - len(v)
		if len(*dst) == 0 && len(v) >= 8 {
			*dst = make([]float64, 0, len(v)/8)
		}
		for j < end {
			if j+8 > len(msg) {
				return 0, errPBTruncated
			}
			*dst = append(*dst, math.Float64frombits(binary.LittleEndian.Uint64(msg[j:])))
			j += 8
		}
		return j, nil
	}
	return 0, errWireType(wt, name)
}

// decodeSpan reads a BucketSpan.
func decodeSpan(msg []byte) (histogram.Span, error) {
	var sp histogram.Span
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "BucketSpan")
		if err != nil {
			return sp, err
		}
		if field != 1 && field != 2 {
			if i, err = pbSkip(msg, i); err != nil {
				return sp, err
			}
			continue
		}
		if wt != 0 {
			return sp, errWireType(wt, [...]string{"", "Offset", "Length"}[field])
		}
		var u uint64
		if u, i, err = pbVarint(msg, next); err != nil {
			return sp, err
		}
		if field == 1 {
			sp.Offset = zigzag32(u)
		} else {
			sp.Length = uint32(u)
		}
	}
	return sp, nil
}
