package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestDecodeRecordEdges holds the series and samples decoders to their
// edges: a record cut right after its type or inside its last varint is
// refused, never read as a shorter valid record, and records whose fields
// are as small as they can be decode.
func TestDecodeRecordEdges(t *testing.T) {
	// One sample of 20 bytes (a 10-byte ref delta, a 2-byte time delta, the
	// value): a record claiming two such samples passes the count's bound
	// (2 samples of at least 10 bytes in 20) and then runs out of bytes
	// exactly where the second sample's ref should start.
	first := EncodeSamples(nil, []RefSample{{Ref: 1 << 63, T: 64, V: 1}})[2:]
	if len(first) != 20 {
		t.Fatalf("first sample takes %d bytes, want 20", len(first))
	}
	countPastEnd := append([]byte{RecordSamples, 2}, first...)
	// Two samples, the second cut inside its time delta: after its ref, eight
	// bytes that all say "more follows", as many as a value takes.
	first = EncodeSamples(nil, []RefSample{{Ref: 1 << 20, T: 1, V: 1}})[2:]
	cutInVarint := append(append([]byte{RecordSamples, 2}, first...), 0)
	cutInVarint = append(cutInVarint, bytes.Repeat([]byte{0x80}, 8)...)
	for _, tc := range []struct {
		name string
		rec  []byte
		dec  func([]byte) error
	}{
		{"samples without count", []byte{RecordSamples}, decSamples},
		{"samples count past the end", countPastEnd, decSamples},
		{"samples cut inside a varint", cutInVarint, decSamples},
		{"series without count", []byte{RecordSeries}, decSeries},
		{"series cut inside its ref", []byte{RecordSeries, 1, 0x80}, decSeries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("decode panicked: %v", r)
					}
				}()
				err = tc.dec(tc.rec)
			}()
			if !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("decode: %v, want ErrInvalidRecord", err)
			}
		})
	}

	// The smallest fields there are. A series with no labels takes 2 bytes
	// (ref, label count) and a label with a one-letter name and an empty
	// value 3, so these records hold exactly as many series (labels) as
	// half their remaining bytes: the decoder's bounds must let them pass.
	series := []RefSeries{
		{Ref: 1, Labels: labels.EmptyLabels()},
		{Ref: 2, Labels: labels.FromStrings("a", "")},
	}
	got, err := DecodeSeries(EncodeSeries(nil, series[:1]), nil)
	if err != nil || !equalSeries(got, series[:1]) {
		t.Errorf("one series without labels: decoded %v, %v", got, err)
	}
	got, err = DecodeSeries(EncodeSeries(nil, series[1:]), nil)
	if err != nil || !equalSeries(got, series[1:]) {
		t.Errorf("one series {a=\"\"}: decoded %v, %v", got, err)
	}
	got, err = DecodeSeries(EncodeSeries(nil, series), nil)
	if err != nil || !equalSeries(got, series) {
		t.Errorf("both: decoded %v, %v", got, err)
	}

	// Deltas whose zigzag encoding starts with the byte 0x80 (a delta of
	// 64 is 128: 0x80 0x01) and with 0x7f (a delta of -64), on both sides of
	// the decoder's one-byte fast path.
	samples := []RefSample{
		{Ref: 64, T: 64, V: 1},
		{Ref: 0, T: 0, V: 2},
		{Ref: 63, T: -1, V: 3},
		{Ref: 127, T: 63, V: 4},
	}
	gotSamples, err := DecodeSamples(EncodeSamples(nil, samples), nil)
	if err != nil || !equalSamples(gotSamples, samples) {
		t.Errorf("samples around one-byte deltas: decoded %v, %v; want %v", gotSamples, err, samples)
	}
}

// TestCorruptSampleCountCostsLittle is TestCorruptCountsCostLittle for the
// samples decoder, which sets aside room for the samples its record claims
// (24 bytes each): a count ten times what the bytes can hold is refused
// before that.
func TestCorruptSampleCountCostsLittle(t *testing.T) {
	pad := make([]byte, 4096)
	for name, n := range map[string]uint64{
		"10 times too many": uint64(len(pad)),
		"2^62":              1 << 62,
	} {
		rec := binary.AppendUvarint([]byte{RecordSamples}, n)
		rec = append(rec, pad...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := DecodeSamples(rec, nil)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > uint64(4*len(rec)) {
			t.Errorf("%s: decoding a %d-byte record allocated %d bytes", name, len(rec), a)
		}
	}
}

// TestEncodeSamplesAllocatesOnce: EncodeSamples sets aside room for 12
// bytes a sample (a ref and a time delta of up to two bytes each and the
// value) before it writes, so encoding such samples into an empty buffer
// allocates as often as growing one buffer to that size does (once; twice
// under the race detector), however many samples there are.
func TestEncodeSamplesAllocatesOnce(t *testing.T) {
	s := make([]RefSample, 1000)
	for i := range s {
		s[i] = RefSample{Ref: uint64(i), T: 1_700_000_000_000 + int64(i)*1000, V: float64(i)}
	}
	var sink []byte
	one := testing.AllocsPerRun(10, func() { sink = slices.Grow([]byte(nil), 12*len(s)+16) })
	if n := testing.AllocsPerRun(10, func() { sink = EncodeSamples(nil, s) }); n != one {
		t.Errorf("EncodeSamples of %d samples: %v allocations, want %v, as one buffer", len(s), n, one)
	}
	_ = sink
}
