package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// A hand-written reader for the few protobuf messages of remote write 1.0
// (prometheus/prompb types.proto and remote.proto):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
//	               repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
//
// It exists for speed: prompb's generated Unmarshal allocates every label
// string and grows every slice, about 20 allocations per series, which
// made it the bulk of decoding time. This reader hands the builder label
// strings that alias the decompressed buffer and samples directly, so a
// request costs a few allocations per new series (its Labels and key) and
// none per sample. It follows gogo-protobuf's generated code on what is an
// error (truncation, bad lengths, a known field with the wrong wire type,
// varints over 10 bytes, unbalanced groups); the differential fuzz target
// checks it against prompb. Exemplars and metadata are skipped unparsed.

var (
	errPBTruncated = fmt.Errorf("proto: %w", io.ErrUnexpectedEOF)
	errPBOverflow  = errors.New("proto: integer overflow")
	errPBLength    = errors.New("proto: negative length found during unmarshaling")
	errPBEndGroup  = errors.New("proto: unexpected end of group")
)

// pbVarint reads a varint at b[i:] the way gogo-protobuf does: at most 10
// bytes, bits past the 64th dropped.
func pbVarint(b []byte, i int) (uint64, int, error) {
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

// pbKey reads a field key at b[i:].
func pbKey(b []byte, i int, msg string) (field int32, wireType int, next int, err error) {
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

func errWireType(wt int, field string) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wt, field)
}

// decodeWriteRequest feeds the series and samples of a marshalled
// WriteRequest to b. Protobuf errors are returned as they are (the caller
// wraps them); validation and limit errors come back as *Error.
func decodeWriteRequest(raw []byte, b *builder) error {
	for i := 0; i < len(raw); {
		field, wt, next, err := pbKey(raw, i, "WriteRequest")
		if err != nil {
			return err
		}
		if field != 1 {
			if i, err = pbSkip(raw, i); err != nil {
				return err
			}
			continue
		}
		if wt != 2 {
			return errWireType(wt, "Timeseries")
		}
		var ts []byte
		if ts, i, err = pbBytes(raw, next); err != nil {
			return err
		}
		if err := decodeTimeSeries(ts, b); err != nil {
			return err
		}
	}
	return nil
}

// decodeTimeSeries reads one TimeSeries in two passes, since protobuf lets
// labels and samples come in any order: labels first, then samples.
func decodeTimeSeries(msg []byte, b *builder) error {
	b.resetLabels()
	hasHistograms := false
	for i := 0; i < len(msg); {
		field, wt, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
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
			switch field {
			case 1:
				name, value, err := decodeLabel(v)
				if err != nil {
					return err
				}
				b.addLabel(name, value)
			case 4:
				hasHistograms = true
			}
		default:
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
		}
	}
	b.finishLabels()
	if hasHistograms {
		return withSeries(newError(ErrUnsupported, "native histograms are not supported (Strata stores float samples only)"), formatSeries(b.name, b.pending))
	}
	// A series is validated, and counts against the series limit, even
	// when it carries no samples.
	ref, err := b.seriesRef()
	if err != nil {
		return err
	}
	for i := 0; i < len(msg); {
		// Pass one checked the framing, so errors here are unexpected.
		field, _, next, err := pbKey(msg, i, "TimeSeries")
		if err != nil {
			return err
		}
		if field != 2 {
			if i, err = pbSkip(msg, i); err != nil {
				return err
			}
			continue
		}
		var v []byte
		if v, i, err = pbBytes(msg, next); err != nil {
			return err
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

// decodeLabel reads a Label. The strings alias msg.
func decodeLabel(msg []byte) (name, value string, err error) {
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

// decodeSample reads a Sample.
func decodeSample(msg []byte) (t int64, v float64, err error) {
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
			if next+8 > len(msg) {
				return 0, 0, errPBTruncated
			}
			v = math.Float64frombits(binary.LittleEndian.Uint64(msg[next:]))
			i = next + 8
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
