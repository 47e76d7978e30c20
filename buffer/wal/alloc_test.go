package wal

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
)

// TestCorruptCountsCostLittle checks what the decoders promise of a count
// that claims more elements than the record's bytes can hold: the record
// is refused before memory is set aside for them, so that decoding costs
// at most a few times the record's size, and a count near 2^63 is an
// error, not a panic.
func TestCorruptCountsCostLittle(t *testing.T) {
	pad := make([]byte, 4096)
	// An exemplars record: one series without labels claiming k exemplars,
	// then pad (a valid exemplar takes at least 10 bytes).
	exemplars := func(k uint64) []byte {
		rec := []byte{RecordExemplars, 1, 0}
		rec = binary.AppendUvarint(rec, k)
		return append(rec, pad...)
	}
	// A float histogram whose positive buckets claim n floats (8 bytes
	// each), then pad.
	floatBuckets := func(n uint64) []byte {
		rec := EncodeHistograms(nil, []RefHistogramSample{{FH: &histogram.FloatHistogram{}}})
		rec = rec[:len(rec)-2] // drop the two empty bucket lists
		rec = binary.AppendUvarint(rec, n)
		return append(rec, pad...)
	}
	for name, rec := range map[string][]byte{
		"exemplars, 10 times too many":    exemplars(uint64(len(pad))),
		"exemplars, 2^62":                 exemplars(1 << 62),
		"float buckets, 8 times too many": floatBuckets(uint64(len(pad))),
		"float buckets, 2^62":             floatBuckets(1 << 62),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var err error
		if rec[0] == RecordExemplars {
			_, err = DecodeExemplars(rec, nil)
		} else {
			_, err = DecodeHistograms(rec, nil)
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(4*len(rec)) {
			t.Errorf("%s: decoding a %d-byte record allocated %d bytes", name, len(rec), n)
		}
	}
}
