package query

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer/wal"
)

// extentVersion is the first byte of every cached value; bump it when the
// encoding or the meaning of a key changes. Version 3 added histogram
// points; an older value reads as a miss.
const extentVersion = 3

// extent is a cached piece of a query's result: the series with their
// points at the steps from From to To (inclusive, on the query's grid), or
// an instant result (From == To).
type extent struct {
	Key      []byte // the full cache key, compared on read
	From, To int64  // ms
	Kind     byte   // 'm' matrix (range or instant range-vector), 'v' vector, 's' scalar
	Matrix   promql.Matrix
	Warnings []string // sorted, all of them
	Infos    []string // sorted, all of them
}

var errBadExtent = errors.New("malformed cached extent")

// annotated reports whether e carries warnings or infos.
func (e *extent) annotated() bool { return len(e.Warnings)+len(e.Infos) > 0 }

// serves reports whether e answers the steps from a to b exactly. The
// annotations of an evaluation are those of its steps, but a stored extent
// does not say which of its steps emitted them: an annotated extent serves
// only its own steps, an extent without annotations any of its sub-ranges
// (a sub-range emits a subset of the annotations, so none).
func (e *extent) serves(a, b int64) bool {
	if e.annotated() {
		return e.From == a && e.To == b
	}
	return e.From <= a && e.To >= b
}

// appendExtent encodes e after dst.
func appendExtent(dst []byte, e *extent) []byte {
	dst = append(dst, extentVersion, e.Kind)
	dst = appendBytes(dst, e.Key)
	dst = binary.AppendVarint(dst, e.From)
	dst = binary.AppendVarint(dst, e.To)
	dst = binary.AppendUvarint(dst, uint64(len(e.Warnings)))
	for _, w := range e.Warnings {
		dst = appendBytes(dst, []byte(w))
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Infos)))
	for _, w := range e.Infos {
		dst = appendBytes(dst, []byte(w))
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Matrix)))
	for _, s := range e.Matrix {
		dst = binary.AppendUvarint(dst, uint64(s.Metric.Len()))
		s.Metric.Range(func(l labels.Label) {
			dst = appendBytes(dst, []byte(l.Name))
			dst = appendBytes(dst, []byte(l.Value))
		})
		dst = binary.AppendUvarint(dst, uint64(len(s.Floats)))
		prev := e.From
		for _, p := range s.Floats {
			dst = binary.AppendVarint(dst, p.T-prev)
			prev = p.T
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(p.F))
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.Histograms)))
		prev = e.From
		for _, p := range s.Histograms {
			dst = binary.AppendVarint(dst, p.T-prev)
			prev = p.T
			dst = wal.AppendFloatHistogram(dst, p.H)
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decodeExtent decodes a value written by appendExtent. It never panics on
// malformed input.
func decodeExtent(b []byte) (*extent, error) {
	d := decoder{b: b}
	if d.byte() != extentVersion {
		return nil, errBadExtent
	}
	e := &extent{Kind: d.byte()}
	e.Key = d.bytes()
	e.From = d.varint()
	e.To = d.varint()
	nw := d.count()
	for range nw {
		e.Warnings = append(e.Warnings, string(d.bytes()))
	}
	ni := d.count()
	for range ni {
		e.Infos = append(e.Infos, string(d.bytes()))
	}
	ns := d.count()
	if d.err != nil {
		return nil, d.err
	}
	e.Matrix = make(promql.Matrix, 0, ns)
	// Every point takes at least 9 bytes: one allocation holds them all.
	all := make([]promql.FPoint, 0, len(d.b)/9)
	var sb labels.ScratchBuilder
	for range ns {
		sb.Reset()
		nl := d.count()
		for range nl {
			name := d.bytes()
			value := d.bytes()
			// Labels() copies the bytes; they need not outlive it.
			sb.Add(unsafeString(name), unsafeString(value))
		}
		np := d.count()
		if d.err != nil {
			return nil, d.err
		}
		if np > cap(all)-len(all) {
			return nil, errBadExtent
		}
		pts := all[len(all) : len(all) : len(all)+np]
		all = all[:len(all)+np]
		prev := e.From
		for range np {
			t := prev + d.varint()
			prev = t
			pts = append(pts, promql.FPoint{T: t, F: math.Float64frombits(d.u64())})
		}
		if d.err != nil {
			return nil, d.err
		}
		s := promql.Series{Metric: sb.Labels(), Floats: pts[:np:np]}
		if np == 0 {
			s.Floats = nil
		}
		nh := d.count()
		prev = e.From
		for range nh {
			t := prev + d.varint()
			prev = t
			if d.err != nil {
				return nil, d.err
			}
			h, rest, err := wal.ReadFloatHistogram(d.b)
			if err != nil {
				return nil, errBadExtent
			}
			d.b = rest
			s.Histograms = append(s.Histograms, promql.HPoint{T: t, H: h})
		}
		if d.err != nil {
			return nil, d.err
		}
		e.Matrix = append(e.Matrix, s)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadExtent
	}
	return e, nil
}

// decoder reads the encoding; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errBadExtent, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that cannot exceed the remaining bytes (every item
// takes at least one byte), so a corrupt count cannot make us allocate.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// unsafeString views b as a string without copying; b must not change while
// the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
