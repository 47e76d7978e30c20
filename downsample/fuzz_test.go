package downsample

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/value"

	"github.com/strata-tsdb/strata/segments"
)

// fuzzSamples decodes a sample stream: a resolution choice, a start time,
// then records of a signed time delta (3 bytes), a value kind and 8 bytes
// of value. Deltas may be zero or negative, making the stream unsorted.
func fuzzSamples(data []byte) (res int64, ss []sample) {
	resolutions := []int64{1, 7, 1000, Res5m, Res1h}
	if len(data) < 9 {
		return Res5m, nil
	}
	res = resolutions[int(data[0])%len(resolutions)]
	t := int64(binary.BigEndian.Uint64(data[1:9]))
	data = data[9:]
	for len(data) >= 12 {
		d := int64(data[0])<<16 | int64(data[1])<<8 | int64(data[2])
		d -= 1 << 20 // mostly positive, sometimes zero or negative
		t += d
		var v float64
		switch data[3] % 8 {
		case 0:
			v = math.Float64frombits(value.StaleNaN)
		case 1:
			v = math.NaN()
		case 2:
			v = math.Inf(int(data[4]%2)*2 - 1)
		case 3:
			v = math.Float64frombits(binary.BigEndian.Uint64(data[4:12]))
		default:
			v = float64(int32(binary.BigEndian.Uint32(data[4:8]))) / 16
		}
		ss = append(ss, sample{T: t, V: v})
		data = data[12:]
	}
	return res, ss
}

func FuzzAggregate(f *testing.F) {
	seed := func(res byte, t0 int64, recs ...[12]byte) []byte {
		b := binary.BigEndian.AppendUint64([]byte{res}, uint64(t0))
		for _, r := range recs {
			b = append(b, r[:]...)
		}
		return b
	}
	step := [12]byte{0x10, 0x27, 0x10, 4, 0, 0, 0, 10} // +10000 ms (plus the 1<<20 bias), value 10/16
	f.Add(seed(3, day0, step, step, step))
	f.Add(seed(4, -day0, step, [12]byte{0x10, 0, 0, 0}, step, [12]byte{0x10, 0, 0, 1}))
	f.Add(seed(0, math.MaxInt64-(1<<22), step, step))
	f.Add(seed(2, math.MinInt64, step, [12]byte{0x0f, 0, 0, 3, 0x7f, 0xf0, 0, 0, 0, 0, 0, 2}, step))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, ss := fuzzSamples(data)
		chunks, err := Aggregate(segments.NewSliceIterator(ss), res)
		sorted, fits := true, true
		for i, s := range ss {
			if i > 0 && s.T <= ss[i-1].T {
				sorted = false
			}
			if _, ok := BucketEnd(s.T, res); !ok && !value.IsStaleNaN(s.V) {
				fits = false
			}
		}
		switch {
		case !sorted:
			if !errors.Is(err, ErrUnsorted) && !errors.Is(err, ErrTimeRange) {
				t.Fatalf("unsorted input: err %v", err)
			}
			return
		case !fits:
			if !errors.Is(err, ErrTimeRange) {
				t.Fatalf("out of range input: err %v", err)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		rows := rowsOf(t, chunks)
		want := bruteForce(ss, res)
		nonStale := 0
		for _, s := range ss {
			if !value.IsStaleNaN(s.V) {
				nonStale++
			}
		}
		if len(rows) != len(want) {
			t.Fatalf("%d buckets, want %d", len(rows), len(want))
		}
		total := 0.0
		for i, r := range rows {
			w := want[i]
			if r.T != w.T || r.Count != w.Count || !sameFloat(r.Min, w.Min, 0) || !sameFloat(r.Max, w.Max, 0) {
				t.Fatalf("bucket %d: got %+v, want %+v", i, r, w)
			}
			total += r.Count
		}
		if total != float64(nonStale) {
			t.Fatalf("counts add up to %g, want %d", total, nonStale)
		}
		coarse, err := AggregateRollup(chunks, res*12)
		if errors.Is(err, ErrTimeRange) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		total = 0
		for _, r := range rowsOf(t, coarse) {
			total += r.Count
		}
		if total != float64(nonStale) {
			t.Fatalf("rolled-up counts add up to %g, want %d", total, nonStale)
		}
	})
}
