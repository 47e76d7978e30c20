package api

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// The encoders below write the Prometheus HTTP API's JSON by appending to a
// byte slice: the shapes are fixed and small, and a generic encoder costs
// more than the query on a cache hit.

func appendErrorBody(dst []byte, typ errorType, msg string) []byte {
	dst = append(dst, `{"status":"error","errorType":`...)
	dst = appendString(dst, string(typ))
	dst = append(dst, `,"error":`...)
	dst = appendString(dst, msg)
	return append(dst, '}')
}

// appendSuccess wraps data (already JSON) in the success envelope.
func appendSuccess(dst []byte, data func([]byte) []byte, warnings, infos []string) []byte {
	dst = append(dst, `{"status":"success","data":`...)
	dst = data(dst)
	dst = appendStrings(dst, "warnings", warnings)
	dst = appendStrings(dst, "infos", infos)
	return append(dst, '}')
}

func appendStrings(dst []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return appendStringArray(dst, ss)
}

func appendStringArray(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendQueryData writes {"resultType":…,"result":…}.
func appendQueryData(dst []byte, v parser.Value) []byte {
	dst = append(dst, `{"resultType":"`...)
	dst = append(dst, v.Type()...)
	dst = append(dst, `","result":`...)
	switch v := v.(type) {
	case promql.Matrix:
		dst = appendMatrix(dst, v)
	case promql.Vector:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"metric":`...)
			dst = appendLabels(dst, s.Metric)
			if s.H != nil {
				dst = append(dst, `,"histogram":`...)
				dst = appendHistogram(dst, s.T, s.H)
			} else {
				dst = append(dst, `,"value":`...)
				dst = appendPoint(dst, s.T, s.F)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	case promql.Scalar:
		dst = appendPoint(dst, v.T, v.V)
	case promql.String:
		dst = append(dst, '[')
		dst = appendTimestamp(dst, v.T)
		dst = append(dst, ',')
		dst = appendString(dst, v.V)
		dst = append(dst, ']')
	default:
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

func appendMatrix(dst []byte, m promql.Matrix) []byte {
	dst = append(dst, '[')
	for i, s := range m {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"metric":`...)
		dst = appendLabels(dst, s.Metric)
		if len(s.Floats) > 0 {
			dst = append(dst, `,"values":[`...)
			for j, p := range s.Floats {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendPoint(dst, p.T, p.F)
			}
			dst = append(dst, ']')
		}
		if len(s.Histograms) > 0 {
			dst = append(dst, `,"histograms":[`...)
			for j, p := range s.Histograms {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendHistogram(dst, p.T, p.H)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func appendLabels(dst []byte, ls labels.Labels) []byte {
	dst = append(dst, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, l.Name)
		dst = append(dst, ':')
		dst = appendString(dst, l.Value)
	})
	return append(dst, '}')
}

// appendPoint writes [<seconds>,"<value>"] as Prometheus does.
func appendPoint(dst []byte, t int64, f float64) []byte {
	dst = append(dst, '[')
	dst = appendTimestamp(dst, t)
	dst = append(dst, ',', '"')
	dst = appendFloat(dst, f)
	return append(dst, '"', ']')
}

// appendTimestamp writes milliseconds as seconds with up to three decimals,
// like prometheus/util/jsonutil.MarshalTimestamp.
func appendTimestamp(dst []byte, t int64) []byte {
	if t < 0 {
		dst = append(dst, '-')
		t = -t
	}
	dst = strconv.AppendInt(dst, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		dst = append(dst, '.')
		if frac < 100 {
			dst = append(dst, '0')
		}
		if frac < 10 {
			dst = append(dst, '0')
		}
		dst = strconv.AppendInt(dst, frac, 10)
	}
	return dst
}

// appendFloat formats like prometheus/util/jsonutil.MarshalFloat.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, 64)
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string, escaping as encoding/json does
// (HTML characters included) and replacing invalid UTF-8.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendHistogram writes a native histogram the way
// prometheus/util/jsonutil.MarshalHistogram does: only buckets with a
// count, each as [boundary rule, "lower", "upper", "count"].
func appendHistogram(dst []byte, t int64, h *histogram.FloatHistogram) []byte {
	dst = append(dst, '[')
	dst = appendTimestamp(dst, t)
	dst = append(dst, `,{"count":"`...)
	dst = appendFloat(dst, h.Count)
	dst = append(dst, `","sum":"`...)
	dst = appendFloat(dst, h.Sum)
	dst = append(dst, '"')
	first := true
	it := h.AllBucketIterator()
	for it.Next() {
		b := it.At()
		if b.Count == 0 {
			continue
		}
		if first {
			dst = append(dst, `,"buckets":[`...)
		} else {
			dst = append(dst, ',')
		}
		first = false
		boundaries := 2 // both exclusive
		switch {
		case b.LowerInclusive && b.UpperInclusive:
			boundaries = 3
		case b.LowerInclusive:
			boundaries = 1
		case b.UpperInclusive:
			boundaries = 0
		}
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(boundaries), 10)
		for _, f := range []float64{b.Lower, b.Upper, b.Count} {
			dst = append(dst, ',', '"')
			dst = appendFloat(dst, f)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	if !first {
		dst = append(dst, ']')
	}
	return append(dst, '}', ']')
}
