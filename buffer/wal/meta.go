package wal

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// Record types for what a write carries besides samples. A log written
// before they existed holds none and replays as before; a server older than
// them refuses a log that holds them (unknown record type).
const (
	// RecordExemplars holds exemplars with the labels of their series
	// (EncodeExemplars).
	RecordExemplars byte = 4
	// RecordMetadata holds metric family metadata (EncodeMetadata).
	RecordMetadata byte = 5
)

// Exemplar is one exemplar: its labels, timestamp (ms) and value.
type Exemplar struct {
	Labels labels.Labels
	T      int64
	V      float64
}

// SeriesExemplars are exemplars of the series with labels Series. The
// record names the series by its labels, not by a head reference:
// exemplars are kept apart from the head's series, which may be removed
// while their exemplars are still kept.
type SeriesExemplars struct {
	Series    labels.Labels
	Exemplars []Exemplar
}

// Metadata is the metadata of one metric family.
type Metadata struct {
	Family, Type, Unit, Help string
}

// EncodeExemplars appends the exemplars record of s to dst and returns it.
//
// Layout: type, uvarint count of series, then per series its labels
// (uvarint count, then per label uvarint length and bytes of the name,
// then of the value), uvarint count of exemplars, and per exemplar its
// labels (the same way), the zigzag varint timestamp and the 8 bytes of
// the value (IEEE 754, little endian).
func EncodeExemplars(dst []byte, s []SeriesExemplars) []byte {
	dst = append(dst, RecordExemplars)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	for i := range s {
		dst = appendLabels(dst, s[i].Series)
		dst = binary.AppendUvarint(dst, uint64(len(s[i].Exemplars)))
		for _, e := range s[i].Exemplars {
			dst = appendLabels(dst, e.Labels)
			dst = binary.AppendVarint(dst, e.T)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(e.V))
		}
	}
	return dst
}

func appendLabels(dst []byte, lset labels.Labels) []byte {
	dst = binary.AppendUvarint(dst, uint64(lset.Len()))
	lset.Range(func(l labels.Label) {
		dst = appendStr(dst, l.Name)
		dst = appendStr(dst, l.Value)
	})
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeExemplars appends the exemplars of an exemplars record to dst and
// returns it; on error it returns dst unchanged. Nothing aliases rec.
func DecodeExemplars(rec []byte, dst []SeriesExemplars) ([]SeriesExemplars, error) {
	orig := len(dst)
	d := decoder{b: rec}
	if t := d.readByte(); t != RecordExemplars {
		return dst, invalid("exemplars", "record type %d", t)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/2 { // A series takes at least 2 bytes.
		return dst, invalid("exemplars", "%d series in %d bytes", n, len(d.b))
	}
	b := labels.NewScratchBuilder(0)
	b.SetUnsafeAdd(true) // The strings alias rec; Labels() copies them.
	for i := uint64(0); i < n && d.err == nil; i++ {
		series, err := d.labels(&b, "exemplars")
		if err != nil {
			return dst[:orig], err
		}
		k := d.uvarint()
		if d.err == nil && k > uint64(len(d.b))/10 { // An exemplar takes at least 10 bytes.
			return dst[:orig], invalid("exemplars", "%d exemplars in %d bytes", k, len(d.b))
		}
		se := SeriesExemplars{Series: series, Exemplars: make([]Exemplar, 0, k)}
		for j := uint64(0); j < k && d.err == nil; j++ {
			lset, err := d.labels(&b, "exemplars")
			if err != nil {
				return dst[:orig], err
			}
			t := d.varint()
			v := d.f64()
			se.Exemplars = append(se.Exemplars, Exemplar{Labels: lset, T: t, V: v})
		}
		dst = append(dst, se)
	}
	if err := d.done("exemplars"); err != nil {
		return dst[:orig], err
	}
	return dst, nil
}

// labels reads a label set whose names must be strictly increasing.
func (d *decoder) labels(b *labels.ScratchBuilder, what string) (labels.Labels, error) {
	nl := d.uvarint()
	if d.err == nil && nl > uint64(len(d.b))/2 { // A label takes at least 2 bytes.
		return labels.EmptyLabels(), invalid(what, "%d labels in %d bytes", nl, len(d.b))
	}
	b.Reset()
	prev := ""
	for j := uint64(0); j < nl && d.err == nil; j++ {
		name, value := d.str(), d.str()
		if d.err == nil && j > 0 && name <= prev {
			return labels.EmptyLabels(), invalid(what, "label %q after %q: names not strictly sorted", name, prev)
		}
		prev = name
		b.Add(name, value)
	}
	return b.Labels(), nil
}

// EncodeMetadata appends the metadata record of m to dst and returns it.
//
// Layout: type, uvarint count, then per family uvarint length and bytes of
// the family name, the type, the unit and the help.
func EncodeMetadata(dst []byte, m []Metadata) []byte {
	dst = append(dst, RecordMetadata)
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for _, x := range m {
		dst = appendStr(dst, x.Family)
		dst = appendStr(dst, x.Type)
		dst = appendStr(dst, x.Unit)
		dst = appendStr(dst, x.Help)
	}
	return dst
}

// DecodeMetadata appends the entries of a metadata record to dst and
// returns it; on error it returns dst unchanged. Nothing aliases rec.
func DecodeMetadata(rec []byte, dst []Metadata) ([]Metadata, error) {
	orig := len(dst)
	d := decoder{b: rec}
	if t := d.readByte(); t != RecordMetadata {
		return dst, invalid("metadata", "record type %d", t)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/4 { // An entry takes at least 4 bytes.
		return dst, invalid("metadata", "%d entries in %d bytes", n, len(d.b))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		f, t, u, h := d.str(), d.str(), d.str(), d.str()
		dst = append(dst, Metadata{Family: strings.Clone(f), Type: strings.Clone(t), Unit: strings.Clone(u), Help: strings.Clone(h)})
	}
	if err := d.done("metadata"); err != nil {
		return dst[:orig], err
	}
	return dst, nil
}
