package query

import (
	"bytes"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// FuzzDecodeExtent feeds decodeExtent arbitrary bytes (it reads what the
// cache hands back, which may be damaged): it must not panic, and what it
// accepts must encode and decode again to the same extent. The first
// seeds are real encodings, so the fuzzer mutates valid extents too.
func FuzzDecodeExtent(f *testing.F) {
	nan := math.Float64frombits(0x7ff8000000000001)
	for _, e := range []*extent{
		{Key: []byte("k"), From: 0, To: 0, Kind: 's', Matrix: promql.Matrix{{Floats: []promql.FPoint{{T: 0, F: 1}}}}},
		{Key: []byte("range|up|60000"), From: 1_700_000_000_000, To: 1_700_000_600_000, Kind: 'm', Warnings: []string{"w"},
			Matrix: promql.Matrix{
				{Metric: labels.FromStrings("__name__", "up", "job", "a"), Floats: []promql.FPoint{{T: 1_700_000_000_000, F: 1}, {T: 1_700_000_060_000, F: nan}}},
				{Metric: labels.FromStrings("job", "b"), Floats: []promql.FPoint{{T: 1_700_000_600_000, F: math.Inf(-1)}}},
			}},
		{Key: nil, From: -5, To: math.MaxInt64, Kind: 'v', Matrix: promql.Matrix{{Metric: labels.EmptyLabels()}}},
		{Kind: 'm'},
	} {
		f.Add(appendExtent(nil, e))
	}
	f.Add([]byte{})
	f.Add([]byte{extentVersion})
	f.Add([]byte{extentVersion, 'm', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2, 'm', 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeExtent(b)
		if err != nil {
			if e != nil {
				t.Fatalf("decodeExtent returned an extent with error %v", err)
			}
			return
		}
		enc := appendExtent(nil, e)
		back, err := decodeExtent(enc)
		if err != nil {
			t.Fatalf("re-encoded extent does not decode: %v", err)
		}
		if !sameExtent(e, back) {
			t.Fatalf("extent changed through encode/decode:\n%+v\n%+v", e, back)
		}
		// The encoding is canonical once re-encoded.
		if again := appendExtent(nil, back); !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable: %x then %x", enc, again)
		}
	})
}

// sameExtent compares bit for bit (NaN payloads included).
func sameExtent(a, b *extent) bool {
	if !bytes.Equal(a.Key, b.Key) || a.From != b.From || a.To != b.To || a.Kind != b.Kind ||
		len(a.Warnings) != len(b.Warnings) || len(a.Matrix) != len(b.Matrix) {
		return false
	}
	for i := range a.Warnings {
		if a.Warnings[i] != b.Warnings[i] {
			return false
		}
	}
	for i := range a.Matrix {
		sa, sb := a.Matrix[i], b.Matrix[i]
		if !labels.Equal(sa.Metric, sb.Metric) || len(sa.Floats) != len(sb.Floats) {
			return false
		}
		for j := range sa.Floats {
			if sa.Floats[j].T != sb.Floats[j].T || math.Float64bits(sa.Floats[j].F) != math.Float64bits(sb.Floats[j].F) {
				return false
			}
		}
	}
	return true
}
