package wal

import (
	"encoding/binary"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
)

// RefHistogramSample is one native histogram sample of the series with
// reference Ref, T in milliseconds since the epoch. Exactly one of H and FH
// is set.
type RefHistogramSample struct {
	Ref uint64
	T   int64
	H   *histogram.Histogram
	FH  *histogram.FloatHistogram
}

// EncodeHistograms appends the histograms record of s to dst and returns
// it. Integer and float histograms share one record type.
//
// Layout: type, uvarint count, then per sample the zigzag varint
// difference of ref and of T from the previous sample's (from 0 for the
// first), then one byte kind (0 integer, 1 float), the counter-reset hint
// byte, varint schema, 8 bytes of zero threshold and of sum (IEEE 754,
// little endian), then count and zero count (uvarints for an integer
// histogram, 8-byte floats for a float one), the positive and negative
// spans (uvarint count, then varint offset and uvarint length each), the
// positive and negative buckets (uvarint count, then varint deltas for an
// integer histogram, 8-byte floats for a float one) and, for the custom
// bucket schema only, the custom values (uvarint count, 8-byte floats).
func EncodeHistograms(dst []byte, s []RefHistogramSample) []byte {
	dst = append(dst, RecordHistograms)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	var ref uint64
	var t int64
	for i := range s {
		x := &s[i]
		dst = binary.AppendVarint(dst, int64(x.Ref-ref))
		dst = binary.AppendVarint(dst, x.T-t)
		ref, t = x.Ref, x.T
		if x.H != nil {
			dst = appendHistogram(dst, x.H)
		} else {
			dst = appendFloatHistogram(dst, x.FH)
		}
	}
	return dst
}

func appendF64(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func appendSpans(dst []byte, spans []histogram.Span) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(spans)))
	for _, sp := range spans {
		dst = binary.AppendVarint(dst, int64(sp.Offset))
		dst = binary.AppendUvarint(dst, uint64(sp.Length))
	}
	return dst
}

func appendCustom(dst []byte, schema int32, cv []float64) []byte {
	if !histogram.IsCustomBucketsSchema(schema) {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(cv)))
	for _, v := range cv {
		dst = appendF64(dst, v)
	}
	return dst
}

func appendHistogram(dst []byte, h *histogram.Histogram) []byte {
	dst = append(dst, 0, byte(h.CounterResetHint))
	dst = binary.AppendVarint(dst, int64(h.Schema))
	dst = appendF64(dst, h.ZeroThreshold)
	dst = appendF64(dst, h.Sum)
	dst = binary.AppendUvarint(dst, h.Count)
	dst = binary.AppendUvarint(dst, h.ZeroCount)
	dst = appendSpans(dst, h.PositiveSpans)
	dst = appendSpans(dst, h.NegativeSpans)
	for _, bs := range [2][]int64{h.PositiveBuckets, h.NegativeBuckets} {
		dst = binary.AppendUvarint(dst, uint64(len(bs)))
		for _, b := range bs {
			dst = binary.AppendVarint(dst, b)
		}
	}
	return appendCustom(dst, h.Schema, h.CustomValues)
}

func appendFloatHistogram(dst []byte, h *histogram.FloatHistogram) []byte {
	return appendFloatHistogramBody(append(dst, 1), h)
}

func appendFloatHistogramBody(dst []byte, h *histogram.FloatHistogram) []byte {
	dst = append(dst, byte(h.CounterResetHint))
	dst = binary.AppendVarint(dst, int64(h.Schema))
	dst = appendF64(dst, h.ZeroThreshold)
	dst = appendF64(dst, h.Sum)
	dst = appendF64(dst, h.Count)
	dst = appendF64(dst, h.ZeroCount)
	dst = appendSpans(dst, h.PositiveSpans)
	dst = appendSpans(dst, h.NegativeSpans)
	for _, bs := range [2][]float64{h.PositiveBuckets, h.NegativeBuckets} {
		dst = binary.AppendUvarint(dst, uint64(len(bs)))
		for _, b := range bs {
			dst = appendF64(dst, b)
		}
	}
	return appendCustom(dst, h.Schema, h.CustomValues)
}

// DecodeHistograms appends the histograms of a histograms record to dst
// and returns it; on error it returns dst unchanged. The histograms do not
// alias rec. Every count in the record is checked against the bytes left
// before anything is allocated, so a corrupt record cannot make it
// allocate more than a few times its own size.
func DecodeHistograms(rec []byte, dst []RefHistogramSample) ([]RefHistogramSample, error) {
	orig := len(dst)
	d := decoder{b: rec}
	if t := d.readByte(); t != RecordHistograms {
		return dst, invalid("histograms", "record type %d", t)
	}
	n := d.uvarint()
	const minSize = 2 + 2 + 1 + 16 + 2 + 4 // deltas, kind+hint, schema, floats, counts, 4 empty lists
	if d.err == nil && n > uint64(len(d.b))/minSize {
		return dst, invalid("histograms", "%d histograms in %d bytes", n, len(d.b))
	}
	var ref uint64
	var t int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		ref += uint64(d.varint())
		t += d.varint()
		x := RefHistogramSample{Ref: ref, T: t}
		switch kind := d.readByte(); kind {
		case 0:
			x.H = d.histogram()
		case 1:
			x.FH = d.floatHistogram()
		default:
			if d.err == nil {
				return dst[:orig], invalid("histograms", "histogram %d: kind %d", i, kind)
			}
		}
		if d.err != nil {
			break
		}
		dst = append(dst, x)
	}
	if err := d.done("histograms"); err != nil {
		return dst[:orig], err
	}
	return dst, nil
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) f64() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// count reads a list length and checks that the list, at minSize bytes an
// element, fits in what is left.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) spans() []histogram.Span {
	n := d.count(2)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]histogram.Span, n)
	for i := range out {
		off := d.varint()
		l := d.uvarint()
		if off < math.MinInt32 || off > math.MaxInt32 || l > math.MaxUint32 {
			d.fail()
		}
		out[i] = histogram.Span{Offset: int32(off), Length: uint32(l)}
	}
	return out
}

func (d *decoder) floats() []float64 {
	n := d.count(8)
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = d.f64()
	}
	return out
}

func (d *decoder) schema() int32 {
	s := d.varint()
	if s < math.MinInt32 || s > math.MaxInt32 {
		d.fail()
	}
	return int32(s)
}

func (d *decoder) custom(schema int32) []float64 {
	if !histogram.IsCustomBucketsSchema(schema) {
		return nil
	}
	return d.floats()
}

func (d *decoder) histogram() *histogram.Histogram {
	h := &histogram.Histogram{CounterResetHint: histogram.CounterResetHint(d.readByte())}
	h.Schema = d.schema()
	h.ZeroThreshold = d.f64()
	h.Sum = d.f64()
	h.Count = d.uvarint()
	h.ZeroCount = d.uvarint()
	h.PositiveSpans = d.spans()
	h.NegativeSpans = d.spans()
	for _, bs := range [2]*[]int64{&h.PositiveBuckets, &h.NegativeBuckets} {
		n := d.count(1)
		if d.err != nil || n == 0 {
			continue
		}
		*bs = make([]int64, n)
		for i := range *bs {
			(*bs)[i] = d.varint()
		}
	}
	h.CustomValues = d.custom(h.Schema)
	return h
}

func (d *decoder) floatHistogram() *histogram.FloatHistogram {
	h := &histogram.FloatHistogram{CounterResetHint: histogram.CounterResetHint(d.readByte())}
	h.Schema = d.schema()
	h.ZeroThreshold = d.f64()
	h.Sum = d.f64()
	h.Count = d.f64()
	h.ZeroCount = d.f64()
	h.PositiveSpans = d.spans()
	h.NegativeSpans = d.spans()
	h.PositiveBuckets = d.floats()
	h.NegativeBuckets = d.floats()
	h.CustomValues = d.custom(h.Schema)
	return h
}

// AppendFloatHistogram appends the encoding of h that histograms records
// use (without the kind byte) to dst. Other packages that persist float
// histograms (the query cache) use it with ReadFloatHistogram.
func AppendFloatHistogram(dst []byte, h *histogram.FloatHistogram) []byte {
	return appendFloatHistogramBody(dst, h)
}

// ReadFloatHistogram decodes a float histogram written by
// AppendFloatHistogram at the start of b and returns it and the rest of b.
// It never panics and allocates at most a few times len(b).
func ReadFloatHistogram(b []byte) (*histogram.FloatHistogram, []byte, error) {
	d := decoder{b: b}
	h := d.floatHistogram()
	if d.err != nil {
		return nil, nil, invalid("float histogram", "%v", d.err)
	}
	return h, d.b, nil
}
