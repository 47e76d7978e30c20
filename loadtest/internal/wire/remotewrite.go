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
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
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
