package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// Record types: the first byte of every record the head logs.
const (
	RecordInvalid byte = 0 // not a known record
	RecordSeries  byte = 1 // EncodeSeries
	RecordSamples byte = 2 // EncodeSamples
	// RecordHistograms holds native histogram samples (EncodeHistograms).
	// A log written before it existed holds none, and replays as before.
	RecordHistograms byte = 3
)

// ErrInvalidRecord is wrapped by every decoder error.
var ErrInvalidRecord = errors.New("invalid record")

// RefSeries binds a head series reference to its labels. A series record
// is logged before the first samples that use the reference.
type RefSeries struct {
	Ref    uint64
	Labels labels.Labels
}

// RefSample is one sample of the series with reference Ref: T in
// milliseconds since the epoch, V the value.
type RefSample struct {
	Ref uint64
	T   int64
	V   float64
}

// RecordType returns the type of rec, or RecordInvalid.
func RecordType(rec []byte) byte {
	if len(rec) == 0 {
		return RecordInvalid
	}
	switch rec[0] {
	case RecordSeries, RecordSamples, RecordHistograms, RecordExemplars, RecordMetadata:
		return rec[0]
	default:
		return RecordInvalid
	}
}

// EncodeSeries appends the series record of s to dst and returns it.
//
// Layout: type, uvarint count, then per series uvarint ref, uvarint label
// count, and per label uvarint length and bytes of name, then of value.
func EncodeSeries(dst []byte, s []RefSeries) []byte {
	dst = append(dst, RecordSeries)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	for i := range s {
		dst = binary.AppendUvarint(dst, s[i].Ref)
		dst = binary.AppendUvarint(dst, uint64(s[i].Labels.Len()))
		s[i].Labels.Range(func(l labels.Label) {
			dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
			dst = append(dst, l.Name...)
			dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
			dst = append(dst, l.Value...)
		})
	}
	return dst
}

// DecodeSeries appends the series of a series record to dst and returns
// it; on error it returns dst unchanged. The labels do not alias rec.
// Label names must be strictly increasing within a series.
func DecodeSeries(rec []byte, dst []RefSeries) ([]RefSeries, error) {
	orig := len(dst)
	d := decoder{b: rec}
	if t := d.readByte(); t != RecordSeries {
		return dst, invalid("series", "record type %d", t)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/2 { // A series takes at least 2 bytes.
		return dst, invalid("series", "%d series in %d bytes", n, len(d.b))
	}
	b := labels.NewScratchBuilder(0)
	b.SetUnsafeAdd(true) // The strings alias rec; Labels() copies them.
	for i := uint64(0); i < n && d.err == nil; i++ {
		ref := d.uvarint()
		nl := d.uvarint()
		if d.err == nil && nl > uint64(len(d.b))/2 { // A label takes at least 2 bytes.
			return dst[:orig], invalid("series", "%d labels in %d bytes", nl, len(d.b))
		}
		b.Reset()
		prev := ""
		for j := uint64(0); j < nl && d.err == nil; j++ {
			name, value := d.str(), d.str()
			if d.err == nil && j > 0 && name <= prev {
				return dst[:orig], invalid("series", "label %q after %q: names not strictly sorted", name, prev)
			}
			prev = name
			b.Add(name, value)
		}
		if d.err != nil {
			break
		}
		dst = append(dst, RefSeries{Ref: ref, Labels: b.Labels()})
	}
	if err := d.done("series"); err != nil {
		return dst[:orig], err
	}
	return dst, nil
}

// EncodeSamples appends the samples record of s to dst and returns it.
//
// Layout: type, uvarint count, then per sample the zigzag varint
// difference of ref and of T from the previous sample's (from 0 for the
// first), and the 8 bytes of V (IEEE 754, little endian). Snappy, applied
// by the WAL, compresses the repetitive value bytes further.
func EncodeSamples(dst []byte, s []RefSample) []byte {
	dst = slices.Grow(dst, 1+binary.MaxVarintLen64+len(s)*(2+2+8))
	dst = append(dst, RecordSamples)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	var ref uint64
	var t int64
	for i := range s {
		dst = binary.AppendVarint(dst, int64(s[i].Ref-ref))
		dst = binary.AppendVarint(dst, s[i].T-t)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s[i].V))
		ref, t = s[i].Ref, s[i].T
	}
	return dst
}

// DecodeSamples appends the samples of a samples record to dst and
// returns it; on error it returns dst unchanged.
func DecodeSamples(rec []byte, dst []RefSample) ([]RefSample, error) {
	if len(rec) == 0 || rec[0] != RecordSamples {
		return dst, invalid("samples", "not a samples record")
	}
	b := rec[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return dst, invalid("samples", "bad sample count")
	}
	b = b[k:]
	const minSampleSize = 1 + 1 + 8
	if n > uint64(len(b))/minSampleSize {
		return dst, invalid("samples", "%d samples in %d bytes", n, len(b))
	}
	orig := len(dst)
	dst = slices.Grow(dst, int(n))
	var ref uint64
	var t int64
	for i := uint64(0); i < n; i++ {
		dr, k := varint(b)
		if k <= 0 {
			return dst[:orig], invalid("samples", "bad ref of sample %d", i)
		}
		b = b[k:]
		dt, k := varint(b)
		if k <= 0 {
			return dst[:orig], invalid("samples", "bad timestamp of sample %d", i)
		}
		b = b[k:]
		if len(b) < 8 {
			return dst[:orig], invalid("samples", "short value of sample %d", i)
		}
		ref += uint64(dr)
		t += dt
		dst = append(dst, RefSample{Ref: ref, T: t, V: math.Float64frombits(binary.LittleEndian.Uint64(b))})
		b = b[8:]
	}
	if len(b) != 0 {
		return dst[:orig], invalid("samples", "%d trailing bytes", len(b))
	}
	return dst, nil
}

// varint is binary.Varint with a fast path for the one-byte case, which
// is most ref and timestamp deltas.
func varint(b []byte) (int64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	}
	return binary.Varint(b)
}

func invalid(what, format string, args ...any) error {
	return fmt.Errorf("decode %s: %s: %w", what, fmt.Sprintf(format, args...), ErrInvalidRecord)
}

// decoder reads fields from b; after the first error every read returns a
// zero value and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) readByte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

// str returns the next length-prefixed string, aliasing d.b.
func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := unsafe.String(unsafe.SliceData(d.b), int(n))
	d.b = d.b[n:]
	return s
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("unexpected end or bad varint")
	}
}

func (d *decoder) done(what string) error {
	if d.err != nil {
		return invalid(what, "%v", d.err)
	}
	if len(d.b) != 0 {
		return invalid(what, "%d trailing bytes", len(d.b))
	}
	return nil
}
