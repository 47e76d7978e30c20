package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/jsonutil"
)

// TestAppendStringMatchesEncodingJSON compares appendString byte for byte
// with encoding/json (HTML characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028/U+2029 escaped), except that encoding/json writes \b and
// \f where appendString writes \u0008 and \u000c (the same string), on
// strings made to hit every escape and on random bytes.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	f := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, longEscapes(want)) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
	f("")
	f("plain ascii")
	f("\"quoted\" and back\\slash")
	f("a\nb\rc\td\x00e\x01f\x1fg\x7f")
	f("<script>&amp;</script>")
	f("bad utf-8: \xff\xfe and a lone \xc3 byte")
	f("line\u2028separator\u2029paragraph")
	f("héllo wörld ✓ 日本 🙂")
	f("\xe2\x80") // truncated U+2028
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\"\\<>&\n\t\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xa9\xff")
	for range 5000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = byte(rng.UintN(256))
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		f(string(b))
	}
}

// longEscapes rewrites the escapes \b and \f of a JSON string as \u0008
// and \u000c.
func longEscapes(j []byte) []byte {
	var out []byte
	for i := 0; i < len(j); i++ {
		if j[i] != '\\' || i+1 == len(j) {
			out = append(out, j[i])
			continue
		}
		switch j[i+1] {
		case 'b':
			out = append(out, `\u0008`...)
		case 'f':
			out = append(out, `\u000c`...)
		default:
			out = append(out, j[i], j[i+1])
		}
		i++
	}
	return out
}

// TestAppendHistogramMatchesPrometheus compares appendHistogram with
// Prometheus' own encoder (util/jsonutil, which its HTTP API uses) on
// exponential histograms with positive, negative and zero buckets, empty
// buckets (left out), custom-bucket histograms (whose bounds are
// inclusive above), and one without buckets.
func TestAppendHistogramMatchesPrometheus(t *testing.T) {
	hs := map[string]*histogram.FloatHistogram{
		"exponential": {
			Schema: 0, Count: 21, Sum: -3.25, ZeroThreshold: 0.001, ZeroCount: 2,
			PositiveSpans:   []histogram.Span{{Offset: -2, Length: 3}, {Offset: 4, Length: 2}},
			PositiveBuckets: []float64{1, 0, 3, 4, 1e-7},
			NegativeSpans:   []histogram.Span{{Offset: 1, Length: 2}},
			NegativeBuckets: []float64{5, 6},
		},
		"fine schema": {
			Schema: 3, Count: 3, Sum: 1e22,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
			PositiveBuckets: []float64{1, 2},
		},
		"custom buckets": {
			Schema: histogram.CustomBucketsSchema, Count: 10, Sum: 55.5,
			CustomValues:    []float64{0.5, 1, 10},
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 4}},
			PositiveBuckets: []float64{1, 0, 4, 5},
		},
		"no buckets": {Schema: 0, Count: 0, Sum: 0},
		"only zero bucket": {
			Schema: 1, Count: 4, Sum: 0, ZeroThreshold: 1e-128, ZeroCount: 4,
		},
	}
	for name, h := range hs {
		if err := h.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ts := range []int64{0, 1_700_000_000_123, -1500, 42} {
			stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
			stream.WriteArrayStart()
			jsonutil.MarshalTimestamp(ts, stream)
			stream.WriteMore()
			jsonutil.MarshalHistogram(h, stream)
			stream.WriteArrayEnd()
			want := bytes.Clone(stream.Buffer())
			jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
			if got := appendHistogram(nil, ts, h); !bytes.Equal(got, want) {
				t.Errorf("%s at %d:\n got %s\nwant %s", name, ts, got, want)
			}
		}
	}
}

// TestAppendQueryDataShapes checks the result types that carry strings and
// histograms: a string result, a vector and a matrix holding histograms.
func TestAppendQueryDataShapes(t *testing.T) {
	h := &histogram.FloatHistogram{Schema: 0, Count: 1, Sum: 2, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{1}}
	lset := labels.FromStrings("__name__", "h", "job", "<x>")
	f := func(v parser.Value, want string) {
		t.Helper()
		got := appendQueryData(nil, v)
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON: %s", got)
		}
	}
	f(promql.String{T: 1500, V: "a\"<b>\n"}, `{"resultType":"string","result":[1.500,"a\"\u003cb\u003e\n"]}`)
	f(promql.Vector{{Metric: lset, T: 2000, H: h}, {Metric: labels.FromStrings("a", "b"), T: 2000, F: math.Inf(-1)}},
		`{"resultType":"vector","result":[{"metric":{"__name__":"h","job":"\u003cx\u003e"},"histogram":[2,{"count":"1","sum":"2","buckets":[[0,"0.5","1","1"]]}]},`+
			`{"metric":{"a":"b"},"value":[2,"-Inf"]}]}`)
	f(promql.Matrix{{Metric: lset, Floats: []promql.FPoint{{T: 1000, F: 1}}, Histograms: []promql.HPoint{{T: 1000, H: h}, {T: 2001, H: h}}}},
		`{"resultType":"matrix","result":[{"metric":{"__name__":"h","job":"\u003cx\u003e"},"values":[[1,"1"]],`+
			`"histograms":[[1,{"count":"1","sum":"2","buckets":[[0,"0.5","1","1"]]}],[2.001,{"count":"1","sum":"2","buckets":[[0,"0.5","1","1"]]}]]}]}`)
}
