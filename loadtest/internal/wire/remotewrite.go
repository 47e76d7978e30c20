package wire

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/golang/snappy"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// The messages of remote write 1.0 (prometheus/prompb), written by hand:
//
//	WriteRequest { repeated TimeSeries timeseries = 1; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; repeated Histogram histograms = 4; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
//	Histogram    { uint64 count_int = 1; double sum = 3; sint32 schema = 4; double zero_threshold = 5;
//	               uint64 zero_count_int = 6; repeated BucketSpan positive_spans = 11;
//	               repeated sint64 positive_deltas = 12 (packed); int64 timestamp = 15; }
//	BucketSpan   { sint32 offset = 1; uint32 length = 2; }
//
// Every series of a group shares the group's label bytes, encoded once;
// only __name__ differs, and it comes first since labels are sorted.
const (
	tagLen1 = 1<<3 | 2 // field 1, length-delimited
	tagLen2 = 2<<3 | 2 // field 2, length-delimited
	tagF64  = 1<<3 | 1 // field 1, fixed64
	tagVar2 = 2<<3 | 0 // field 2, varint
)

type rwEncoder struct {
	groups map[*gen.Group][]byte    // encoded labels without __name__
	names  map[*gen.Family][][]byte // encoded __name__ label per field
	sample []int                    // size of the Sample message per timestamp
	raw    []byte
	body   []byte
	hists  []byte // the histograms of one series
	scr    []byte // one histogram's deltas, then one histogram
}

func newRWEncoder() *rwEncoder {
	return &rwEncoder{groups: map[*gen.Group][]byte{}, names: map[*gen.Family][][]byte{}}
}

func (e *rwEncoder) Endpoint() Endpoint {
	return Endpoint{Path: "/api/v1/write", Header: map[string]string{
		"Content-Type":                      "application/x-protobuf",
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	}}
}

func (e *rwEncoder) Encode(b *gen.Batch) []byte {
	e.sample = e.sample[:0]
	samplesLen := 0
	for _, ts := range b.Times {
		n := 1 + 8 + 1 + uvarintLen(uint64(ts))
		e.sample = append(e.sample, n)
		samplesLen += 1 + uvarintLen(uint64(n)) + n
	}
	raw := e.raw[:0]
	for i, gr := range b.Groups {
		labels := e.groupLabels(gr)
		names := e.nameLabels(gr.Family)
		if gr.Family.HasHistograms() {
			raw = e.appendHistogramSeries(raw, names[0], labels, b, i)
			continue
		}
		for f := range gr.Family.Fields {
			tsLen := len(names[f]) + len(labels) + samplesLen
			raw = append(raw, tagLen1)
			raw = binary.AppendUvarint(raw, uint64(tsLen))
			raw = append(raw, names[f]...)
			raw = append(raw, labels...)
			off := b.Offsets[i] + f*len(b.Times)
			for t, ts := range b.Times {
				raw = append(raw, tagLen2, byte(e.sample[t])) // a Sample is < 128 bytes
				raw = append(raw, tagF64)
				raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(b.Values[off+t]))
				raw = append(raw, tagVar2)
				raw = binary.AppendUvarint(raw, uint64(ts))
			}
		}
	}
	e.raw = raw
	e.body = snappy.Encode(e.body[:cap(e.body)], raw)
	return e.body
}

// appendHistogramSeries appends the TimeSeries of group i of b, a family
// of one native histogram field.
func (e *rwEncoder) appendHistogramSeries(raw, name, labels []byte, b *gen.Batch, i int) []byte {
	hists := e.hists[:0]
	for t, ts := range b.Times {
		h := &b.Hists[b.Offsets[i]+t]
		deltas := e.scr[:0]
		prev := int64(0)
		for _, c := range h.Buckets {
			deltas = binary.AppendUvarint(deltas, zigzag(int64(c)-prev))
			prev = int64(c)
		}
		nDeltas := len(deltas)
		msg := append(deltas, 1<<3|0)
		msg = binary.AppendUvarint(msg, h.Count)
		msg = append(msg, 3<<3|1)
		msg = binary.LittleEndian.AppendUint64(msg, math.Float64bits(h.Sum))
		msg = append(msg, 4<<3|0)
		msg = binary.AppendUvarint(msg, zigzag(int64(h.Schema)))
		msg = append(msg, 5<<3|1)
		msg = binary.LittleEndian.AppendUint64(msg, math.Float64bits(h.ZeroThreshold))
		msg = append(msg, 6<<3|0, 0) // zero_count_int: an integer histogram
		if len(h.Buckets) > 0 {
			span := 1 + uvarintLen(zigzag(int64(h.Offset))) + 1 + uvarintLen(uint64(len(h.Buckets)))
			msg = append(msg, 11<<3|2, byte(span))
			msg = append(msg, 1<<3|0)
			msg = binary.AppendUvarint(msg, zigzag(int64(h.Offset)))
			msg = append(msg, 2<<3|0)
			msg = binary.AppendUvarint(msg, uint64(len(h.Buckets)))
			msg = append(msg, 12<<3|2)
			msg = binary.AppendUvarint(msg, uint64(nDeltas))
			msg = append(msg, deltas[:nDeltas]...)
		}
		msg = append(msg, 15<<3|0)
		msg = binary.AppendUvarint(msg, uint64(ts))
		body := msg[nDeltas:]
		hists = append(hists, 4<<3|2)
		hists = binary.AppendUvarint(hists, uint64(len(body)))
		hists = append(hists, body...)
		e.scr = msg
	}
	e.hists = hists
	raw = append(raw, tagLen1)
	raw = binary.AppendUvarint(raw, uint64(len(name)+len(labels)+len(hists)))
	raw = append(raw, name...)
	raw = append(raw, labels...)
	return append(raw, hists...)
}

func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

func (e *rwEncoder) groupLabels(gr *gen.Group) []byte {
	if l, ok := e.groups[gr]; ok {
		return l
	}
	var l []byte
	for _, lb := range gr.Labels() {
		l = appendLabel(l, lb.Name, lb.Value)
	}
	e.groups[gr] = l
	return l
}

func (e *rwEncoder) nameLabels(f *gen.Family) [][]byte {
	if n, ok := e.names[f]; ok {
		return n
	}
	n := make([][]byte, len(f.Fields))
	for i := range f.Fields {
		n[i] = appendLabel(nil, "__name__", f.SeriesName(i))
	}
	e.names[f] = n
	return n
}

// appendLabel appends a TimeSeries.labels field holding name=value.
func appendLabel(dst []byte, name, value string) []byte {
	n := 1 + uvarintLen(uint64(len(name))) + len(name) + 1 + uvarintLen(uint64(len(value))) + len(value)
	dst = append(dst, tagLen1)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = append(dst, tagLen1)
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	dst = append(dst, tagLen2)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
