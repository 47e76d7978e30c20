package segments

import (
	"math"
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestAppendXORTruncated: a chunk cut short at any length (a torn read, a
// short object) is an error, and the samples appended before it are the
// chunk's first samples, as chunkenc's iterator reads them from the whole
// chunk. Every byte of a chunk holds a bit of its stream, so a cut always
// takes bits of the last sample: AppendXOR must not read the missing bits
// as zeros. (chunkenc's own iterator is no oracle here: at the end of the
// stream it reads fewer bits than asked for, without an error.)
func TestAppendXORTruncated(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for k := range 150 {
		c := randomXOR(t, rng, 1+rng.Intn(40))
		b := c.Bytes()
		all := iterXOR(c, math.MinInt64, math.MaxInt64)
		for cut := range len(b) {
			got, stale, err := AppendXOR[promql.FPoint](nil, b[:cut], math.MinInt64, math.MaxInt64)
			if err == nil {
				t.Fatalf("chunk %d of %d samples cut to %d of %d bytes: %d samples, no error", k, len(all), cut, len(b), len(got))
			}
			if len(got) > len(all) || !sameFPoints(got, all[:len(got)]) {
				t.Fatalf("chunk %d cut to %d of %d bytes: samples %v, not the first of %v", k, cut, len(b), got, all)
			}
			n := 0
			for _, p := range got {
				if value.IsStaleNaN(p.F) {
					n++
				}
			}
			if stale != n {
				t.Fatalf("chunk %d cut to %d bytes: %d stale markers counted, %d appended", k, cut, stale, n)
			}
		}
	}
}

// TestAppendXOREdges: timestamps whose delta of delta lies at each edge of
// the encoding's widths (14, 17 and 20 bits, and the 64-bit escape), and
// values whose XOR with the previous has each count of meaningful bits
// (1 to 64) at each offset, read as chunkenc's iterator reads them; also
// the chunks of no sample and of one. Random chunks rarely meet an edge
// exactly: a delta of delta of exactly 2^13 is the largest the 14-bit
// form holds.
func TestAppendXOREdges(t *testing.T) {
	var dods []int64
	for _, sz := range []uint{14, 17, 20} {
		h := int64(1) << (sz - 1)
		dods = append(dods, h-1, h, h+1, -(h - 1), -h, -(h + 1))
	}
	dods = append(dods, 0, 1, -1, 1<<40, -(1 << 40))
	var vals []float64
	v := uint64(0x3ff0000000000000)
	for m := uint(1); m <= 64; m++ {
		for _, lead := range []uint{0, 1, 12, 31, 32} {
			if lead+m > 64 {
				continue
			}
			trail := 64 - lead - m
			v ^= (1<<(m-1) | 1) << trail // m meaningful bits from lead
			vals = append(vals, math.Float64frombits(v))
		}
	}
	rng := rand.New(rand.NewSource(7))
	for k := range 40 {
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			t.Fatal(err)
		}
		ts, delta := int64(-1<<41)+rng.Int63n(1<<42), int64(1<<30)
		n := 2 + rng.Intn(100)
		if k == 0 {
			n = len(vals)
		}
		for i := range n {
			if i > 1 {
				delta += dods[(i+k)%len(dods)]
			}
			if i > 0 {
				ts += delta
			}
			app.Append(0, ts, vals[(i*(k+1))%len(vals)])
		}
		all := iterXOR(c, math.MinInt64, math.MaxInt64)
		got, _, err := AppendXOR[promql.FPoint](nil, c.Bytes(), math.MinInt64, math.MaxInt64)
		if err != nil || !sameFPoints(got, all) {
			t.Fatalf("chunk %d: %v, %d samples %v; iterator's %d %v", k, err, len(got), got, len(all), all)
		}
		// Cut at the first and last samples' times exactly.
		first, last := all[0].T, all[len(all)-1].T
		for _, r := range [][2]int64{{first, first}, {last, last}, {first + 1, last - 1}, {first, last}} {
			got, _, err := AppendXOR[promql.FPoint](nil, c.Bytes(), r[0], r[1])
			if want := iterXOR(c, r[0], r[1]); err != nil || !sameFPoints(got, want) {
				t.Fatalf("chunk %d [%d, %d]: %v, %v; iterator's %v", k, r[0], r[1], err, got, want)
			}
		}
	}
	for n := range 2 {
		c := chunkenc.NewXORChunk()
		app, _ := c.Appender()
		for range n {
			app.Append(0, 5, 1.5)
		}
		got, _, err := AppendXOR[promql.FPoint](nil, c.Bytes(), math.MinInt64, math.MaxInt64)
		if want := iterXOR(c, math.MinInt64, math.MaxInt64); err != nil || !sameFPoints(got, want) {
			t.Fatalf("a chunk of %d samples: %v, %v; iterator's %v", n, err, got, want)
		}
	}
}

// TestAppendXORUnendingVarints: a chunk whose first timestamp, or whose
// second sample's delta, is a varint that never ends (every byte has its
// continuation bit: damage, or bytes that are no XOR chunk) is an error,
// as it is to chunkenc's iterator; not a timestamp of 0 read from
// whatever follows.
func TestAppendXORUnendingVarints(t *testing.T) {
	cont := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0x80 | byte(i)
		}
		return b
	}
	firstT := append([]byte{0, 1}, cont(9)...)
	c := chunkenc.NewXORChunk()
	app, _ := c.Appender()
	app.Append(0, 1000, 2.5)
	one := c.Bytes() // a valid chunk of one sample
	delta := append([]byte{0, 2}, one[2:]...)
	delta = append(delta, cont(12)...)
	for _, data := range [][]byte{firstT, delta} {
		if _, wantErr := iterXORAll(t, data); !wantErr {
			t.Fatalf("% x: chunkenc's iterator reads it", data)
		}
		if got, _, err := AppendXOR[promql.FPoint](nil, data, math.MinInt64, math.MaxInt64); err == nil {
			t.Fatalf("% x: %v, no error", data, got)
		}
	}
}

// iterXORAll returns the samples chunkenc's iterator reads from data
// before it ends or fails, and whether it failed.
func iterXORAll(t *testing.T, data []byte) ([]promql.FPoint, bool) {
	t.Helper()
	c, err := chunkenc.FromData(chunkenc.EncXOR, data)
	if err != nil {
		t.Fatal(err)
	}
	var out []promql.FPoint
	it := c.Iterator(nil)
	for it.Next() != chunkenc.ValNone {
		ts, v := it.At()
		out = append(out, promql.FPoint{T: ts, F: v})
	}
	return out, it.Err() != nil
}
