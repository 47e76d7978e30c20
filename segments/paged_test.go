package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// pagedRecords returns n records of random length: most short and
// compressible, a few longer than a page and random.
func pagedRecords(rng *rand.Rand, n int) [][]byte {
	var recs [][]byte
	for range n {
		size := 1 + rng.IntN(2000)
		if rng.IntN(50) == 0 {
			size = defaultPageSize + rng.IntN(defaultPageSize)
		}
		r := make([]byte, size)
		for j := range r {
			r[j] = byte(rng.IntN(8)) // compressible
		}
		if size > defaultPageSize {
			for j := range r {
				r[j] = byte(rng.Uint32()) // not: a page of its own, stored as is
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// writePaged writes recs as a paged region at logical base and returns it
// with each record's logical offset.
func writePaged(t testing.TB, recs [][]byte, base uint64) ([]byte, []uint64) {
	t.Helper()
	enc, err := newZstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	pw := newPagedWriter(func(b []byte) error { out = append(out, b...); return nil }, enc, base)
	var offs []uint64
	for _, r := range recs {
		off, err := pw.add(r)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	if err := pw.finish(); err != nil {
		t.Fatal(err)
	}
	return out, offs
}

func TestPagedRegionRoundTrip(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 4))
		recs := pagedRecords(rng, rng.IntN(300))
		const base = 8
		b, offs := writePaged(t, recs, base)
		r, err := openPagedRegion(b, base, NewPageCache(2*defaultPageSize))
		if err != nil {
			t.Fatal(err)
		}
		var codecs [2]int
		for i, rec := range recs {
			got, err := r.at(context.Background(), offs[i])
			if err != nil {
				t.Fatalf("seed %d record %d: %v", seed, i, err)
			}
			if !bytes.HasPrefix(got, rec) {
				t.Fatalf("seed %d record %d: read back other bytes", seed, i)
			}
		}
		for i := range r.offs {
			codecs[b[r.offs[i]]]++
		}
		if len(recs) > 100 && (codecs[pageCodecNone] == 0 || codecs[pageCodecZstd] == 0) {
			t.Fatalf("seed %d: pages by codec %v, want both", seed, codecs)
		}
		if _, err := r.at(context.Background(), r.end); err == nil {
			t.Fatal("read past the end")
		}
	}
}

// fixPageCRCs recomputes the CRCs of a paged region's table and of every
// page the table locates, where the bytes allow, so that mutations reach
// the decoders behind them.
func fixPageCRCs(b []byte, base uint64) {
	if len(b) < pageTrailerSize {
		return
	}
	tlen := uint64(binary.BigEndian.Uint32(b[len(b)-pageTrailerSize:]))
	if tlen > uint64(len(b)-pageTrailerSize) {
		return
	}
	tstart := uint64(len(b)-pageTrailerSize) - tlen
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32c(b[tstart:len(b)-pageTrailerSize]))
	r, err := openPagedRegion(b, base, NewPageCache(0))
	if err != nil {
		return
	}
	for i, off := range r.offs {
		limit := tstart
		if i+1 < len(r.offs) {
			limit = r.offs[i+1]
		}
		d := decbuf{b: b[off:limit]}
		d.byte()
		d.uvarint()
		n := d.uvarint()
		hdr := limit - off - uint64(d.len())
		if d.err != nil || n+4 > uint64(d.len()) {
			continue
		}
		end := off + hdr + n
		binary.BigEndian.PutUint32(b[end:], crc32c(b[off:end]))
	}
}

// checkPagedDecode opens b as a paged region and reads every page. It
// must not panic; a page it returns must have the length the table gives.
// It returns the first error.
func checkPagedDecode(t *testing.T, b []byte) error {
	t.Helper()
	r, err := openPagedRegion(b, 8, NewPageCache(0))
	if err != nil {
		return err
	}
	for i, s := range r.starts {
		p, start, err := r.pageAt(context.Background(), s)
		if err != nil {
			return err
		}
		want := r.end - s
		if i+1 < len(r.starts) {
			want = r.starts[i+1] - s
		}
		if start != s || uint64(len(p)) != want {
			t.Fatalf("page %d: %d bytes at %d, table says %d at %d", i, len(p), start, want, s)
		}
	}
	return nil
}

func FuzzPagedRegion(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 40} {
		b, _ := writePaged(f, pagedRecords(rng, n), 8)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = checkPagedDecode(t, b)
		b = bytes.Clone(b)
		fixPageCRCs(b, 8)
		_ = checkPagedDecode(t, b)
	})
}

// TestPagedRegionMutations runs the fuzz target's checks over seeded random
// mutations of valid regions on every go test: every mutation is detected
// by a checksum, and with the checksums fixed up the decoders still never
// panic.
func TestPagedRegionMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 5, 40} {
		orig, _ := writePaged(t, pagedRecords(rng, n), 8)
		for range 2000 {
			b := bytes.Clone(orig)
			for k := 1 + rng.IntN(3); k > 0; k-- {
				b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			}
			if err := checkPagedDecode(t, b); err == nil {
				t.Fatal("damage not detected")
			}
			fixPageCRCs(b, 8)
			_ = checkPagedDecode(t, b)
		}
	}
}
