package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzDecodeSamples checks that decoding garbage never panics, that what
// decodes re-encodes to the same samples, and that samples built from the
// input round-trip.
func FuzzDecodeSamples(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeSamples(nil, []RefSample{{Ref: 1, T: 1000, V: 1.5}, {Ref: 2, T: 1000, V: math.NaN()}}))
	f.Add(EncodeSamples(nil, []RefSample{{Ref: math.MaxUint64, T: math.MinInt64, V: math.Inf(1)}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, err := DecodeSamples(data, nil); err == nil {
			again, err := DecodeSamples(EncodeSamples(nil, got), nil)
			if err != nil || !equalSamples(again, got) {
				t.Fatalf("re-encoding %v: got %v, %v", got, again, err)
			}
		}
		var in []RefSample
		for b := data; len(b) >= 24; b = b[24:] {
			in = append(in, RefSample{
				Ref: binary.LittleEndian.Uint64(b),
				T:   int64(binary.LittleEndian.Uint64(b[8:])),
				V:   math.Float64frombits(binary.LittleEndian.Uint64(b[16:])),
			})
		}
		got, err := DecodeSamples(EncodeSamples(nil, in), nil)
		if err != nil || !equalSamples(got, in) {
			t.Fatalf("round trip of %v: got %v, %v", in, got, err)
		}
	})
}

// FuzzDecodeSeries does for series records what FuzzDecodeSamples does
// for samples. Series are built from the input as label sets with unique
// names.
func FuzzDecodeSeries(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeSeries(nil, []RefSeries{{Ref: 3, Labels: labels.FromStrings("__name__", "up", "job", "x")}}))
	f.Add(EncodeSeries(nil, []RefSeries{{Ref: 1, Labels: labels.EmptyLabels()}, {Ref: 2, Labels: labels.FromStrings("a", "")}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, err := DecodeSeries(data, nil); err == nil {
			again, err := DecodeSeries(EncodeSeries(nil, got), nil)
			if err != nil || !equalSeries(again, got) {
				t.Fatalf("re-encoding %v: got %v, %v", got, again, err)
			}
		}
		in := seriesFromBytes(data)
		got, err := DecodeSeries(EncodeSeries(nil, in), nil)
		if err != nil || !equalSeries(got, in) {
			t.Fatalf("round trip of %v: got %v, %v", in, got, err)
		}
	})
}

// seriesFromBytes splits data into series: each byte 0xff ends a series,
// each 0xfe ends a label, and within a label the first byte 0xfd splits
// name from value. Duplicate names in a series are dropped.
func seriesFromBytes(data []byte) []RefSeries {
	var out []RefSeries
	var lbls []labels.Label
	seen := map[string]bool{}
	flushLabel := func(b []byte) {
		name, value := b, []byte(nil)
		for i, c := range b {
			if c == 0xfd {
				name, value = b[:i], b[i+1:]
				break
			}
		}
		if !seen[string(name)] {
			seen[string(name)] = true
			lbls = append(lbls, labels.Label{Name: string(name), Value: string(value)})
		}
	}
	start := 0
	for i, c := range data {
		switch c {
		case 0xfe, 0xff:
			flushLabel(data[start:i])
			start = i + 1
			if c == 0xff {
				out = append(out, RefSeries{Ref: uint64(len(out)) * 0x9e3779b97f4a7c15, Labels: labels.New(lbls...)})
				lbls, seen = nil, map[string]bool{}
			}
		}
	}
	return out
}

// FuzzReplay treats the input as the only segment file of a WAL: Replay
// must not panic, must either succeed (possibly repairing the tail) or
// return a *CorruptionError, and a second Replay must then agree with the
// first without repairing anything.
func FuzzReplay(f *testing.F) {
	var valid []byte
	for _, rec := range [][]byte{[]byte("hello"), make([]byte, 300), EncodeSamples(nil, []RefSample{{Ref: 1, T: 2, V: 3}}), EncodeHistograms(nil, testRefHistograms())} {
		valid = appendFrame(valid, rec)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(valid[:len(valid):len(valid)], make([]byte, 100)...))
	f.Add([]byte{})
	f.Add(make([]byte, 20))
	f.Add([]byte{frameSnappy, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "00000000"), data, 0o666); err != nil {
			t.Fatal(err)
		}
		first, _, err := replayAll(t, dir, 0)
		if err != nil {
			if !errors.As(err, new(*CorruptionError)) {
				t.Fatalf("replay: %v, want nil or *CorruptionError", err)
			}
			return
		}
		second, logs, err := replayAll(t, dir, 0)
		if err != nil || logs != "" {
			t.Fatalf("second replay: %v, logged %q", err, logs)
		}
		equalRecords(t, second, first)
	})
}

// FuzzDecodeHistograms checks that decoding garbage never panics and that
// what decodes re-encodes to the same bytes.
func FuzzDecodeHistograms(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeHistograms(nil, testRefHistograms()))
	f.Add(EncodeHistograms(nil, testRefHistograms()[2:3]))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeHistograms(data, nil)
		if err != nil {
			return
		}
		again, err := DecodeHistograms(EncodeHistograms(nil, got), nil)
		if err != nil || !equalHistograms(again, got) {
			t.Fatalf("re-encoding %v: got %v, %v", got, again, err)
		}
	})
}

// FuzzDecodeExemplars checks that decoding garbage never panics and that
// what decodes re-encodes to the same record.
func FuzzDecodeExemplars(f *testing.F) {
	f.Add(EncodeExemplars(nil, []SeriesExemplars{{Series: labels.FromStrings("__name__", "a", "job", "x"),
		Exemplars: []Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), T: 5, V: 1.5}, {T: -1, V: math.NaN()}}}}))
	f.Add([]byte{RecordExemplars, 1, 1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeExemplars(data, nil)
		if err != nil {
			return
		}
		// Varints need not be minimal: compare the canonical encodings.
		canon := EncodeExemplars(nil, got)
		again, err := DecodeExemplars(canon, nil)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b := EncodeExemplars(nil, again); !bytes.Equal(b, canon) {
			t.Fatalf("round trip %x, want %x", b, canon)
		}
	})
}

// FuzzDecodeMetadata does the same for metadata records.
func FuzzDecodeMetadata(f *testing.F) {
	f.Add(EncodeMetadata(nil, []Metadata{{Family: "a", Type: "counter", Unit: "seconds", Help: "A."}, {}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeMetadata(data, nil)
		if err != nil {
			return
		}
		// Varints need not be minimal: compare the canonical encodings.
		canon := EncodeMetadata(nil, got)
		again, err := DecodeMetadata(canon, nil)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b := EncodeMetadata(nil, again); !bytes.Equal(b, canon) {
			t.Fatalf("round trip %x, want %x", b, canon)
		}
	})
}
