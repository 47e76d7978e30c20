package wal

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func testExemplars() []SeriesExemplars {
	return []SeriesExemplars{
		{Series: labels.FromStrings("__name__", "http_requests_total", "job", "api"), Exemplars: []Exemplar{
			{Labels: labels.FromStrings("trace_id", "4bf92f3577b34da6"), T: 1_700_000_000_000, V: 1.5},
			{T: -1, V: math.Inf(-1)},
		}},
		{Series: labels.FromStrings("__name__", "x"), Exemplars: nil},
	}
}

// TestExemplarsRoundTrip checks that exemplars records decode to what was
// encoded, after whatever dst held, and that every truncation and a
// record of another type are refused with ErrInvalidRecord, leaving dst
// as it was.
func TestExemplarsRoundTrip(t *testing.T) {
	in := testExemplars()
	rec := EncodeExemplars(nil, in)
	prev := []SeriesExemplars{{Series: labels.FromStrings("a", "b")}}
	got, err := DecodeExemplars(rec, prev)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !labels.Equal(got[0].Series, prev[0].Series) || !equalExemplars(got[1:], in) {
		t.Fatalf("decoded %v, want %v after %v", got, in, prev)
	}
	for n := range len(rec) {
		if got, err := DecodeExemplars(rec[:n], prev); !errors.Is(err, ErrInvalidRecord) || len(got) != 1 {
			t.Fatalf("truncated to %d of %d bytes: %d entries, %v", n, len(rec), len(got), err)
		}
	}
	if _, err := DecodeExemplars(EncodeMetadata(nil, []Metadata{{Family: "x"}}), nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("a metadata record decoded as exemplars: %v", err)
	}
	// Label names must be strictly sorted: a repeated name is damage.
	dup := EncodeExemplars(nil, []SeriesExemplars{{Series: labels.FromStrings("a", "1", "b", "2")}})
	dup[8] = 'a' // type, count, label count, "a", "1", then "b" becomes a second "a"
	if _, err := DecodeExemplars(dup, nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("labels a, a decoded: %v", err)
	}
}

// TestSmallestExemplarsDecode checks records made only of the smallest
// entries an exemplars record can hold (a series without labels or
// exemplars; an exemplar without labels, with a one-byte timestamp): the
// bounds on the counts a record may claim must not refuse them.
func TestSmallestExemplarsDecode(t *testing.T) {
	for _, in := range [][]SeriesExemplars{
		{{}},
		{{}, {}, {}},
		{{Exemplars: []Exemplar{{}}}},
		{{Exemplars: []Exemplar{{T: 1}, {T: -1, V: 2}, {}}}},
	} {
		got, err := DecodeExemplars(EncodeExemplars(nil, in), nil)
		if err != nil || !equalExemplars(got, in) {
			t.Fatalf("%v: decoded %v, %v", in, got, err)
		}
	}
}

func equalExemplars(a, b []SeriesExemplars) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !labels.Equal(a[i].Series, b[i].Series) || len(a[i].Exemplars) != len(b[i].Exemplars) {
			return false
		}
		for j, e := range a[i].Exemplars {
			f := b[i].Exemplars[j]
			if !labels.Equal(e.Labels, f.Labels) || e.T != f.T || math.Float64bits(e.V) != math.Float64bits(f.V) {
				return false
			}
		}
	}
	return true
}

// TestMetadataRoundTrip does the same for metadata records, the smallest
// (all four strings empty) included.
func TestMetadataRoundTrip(t *testing.T) {
	for _, in := range [][]Metadata{
		{{Family: "http_requests_total", Type: "counter", Unit: "requests", Help: "Requests served."}, {Family: "up", Type: "gauge"}},
		{{}},
		{{}, {}, {}},
	} {
		rec := EncodeMetadata(nil, in)
		prev := []Metadata{{Family: "before"}}
		got, err := DecodeMetadata(rec, prev)
		if err != nil {
			t.Fatalf("%v: %v", in, err)
		}
		if want := append(prev[:1:1], in...); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %v, want %v", got, want)
		}
		for n := range len(rec) {
			if got, err := DecodeMetadata(rec[:n], prev); !errors.Is(err, ErrInvalidRecord) || len(got) != 1 {
				t.Fatalf("%v truncated to %d of %d bytes: %d entries, %v", in, n, len(rec), len(got), err)
			}
		}
	}
	if _, err := DecodeMetadata(EncodeExemplars(nil, testExemplars()), nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("an exemplars record decoded as metadata: %v", err)
	}
}
