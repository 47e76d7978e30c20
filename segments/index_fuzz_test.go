package segments

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// walkIndex decodes everything an index holds the way the reader does:
// every postings list, every series it names, every label symbol, and a few
// matcher selections. It returns the first error.
func walkIndex(b []byte) error {
	r, err := newIndexReader(b, FormatVersion, NewPageCache(1<<20))
	if err != nil {
		return err
	}
	sb := labels.NewScratchBuilder(8)
	walk := func(p postings) error {
		var refs []uint64
		for p.Next() {
			var chks []ChunkMeta
			if refs, err = r.series(context.Background(), p.At(), refs[:0], &chks); err != nil {
				return err
			}
			if _, err := r.labels(&sb, refs); err != nil {
				return err
			}
		}
		return p.Err()
	}
	if err := walk(r.allPostings(context.Background())); err != nil {
		return err
	}
	for _, name := range r.names {
		lv := r.values[name]
		for _, off := range lv.offs {
			if err := walk(r.postingsAt(context.Background(), off)); err != nil {
				return err
			}
		}
		ms := [][]*labels.Matcher{
			{labels.MustNewMatcher(labels.MatchRegexp, name, ".+")},
			{labels.MustNewMatcher(labels.MatchEqual, name, "")},
			{labels.MustNewMatcher(labels.MatchNotEqual, name, lv.values[0]), labels.MustNewMatcher(labels.MatchRegexp, name, ".*")},
		}
		for _, m := range ms {
			p, err := r.postingsForMatchers(context.Background(), m)
			if err != nil {
				return err
			}
			if err := walk(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixIndexCRCs returns a copy of b with the CRCs of the sections and the TOC
// (and of the series pages of a version 2 index) recomputed where the TOC's
// bounds allow, so that mutations reach the
// decoders behind the checksums; nil when there is no TOC to follow.
func fixIndexCRCs(b []byte) []byte {
	if len(b) < indexHeaderSize+tocSize {
		return nil
	}
	b = append([]byte(nil), b...)
	tocOff := len(b) - tocSize
	for i := 0; i < numSections; i++ {
		off := binary.BigEndian.Uint64(b[tocOff+16*i:])
		n := binary.BigEndian.Uint64(b[tocOff+16*i+8:])
		if off > uint64(tocOff) || n > uint64(tocOff) || off+n+4 > uint64(tocOff) {
			continue
		}
		if i == secSeries && b[4] == indexVersionPaged {
			fixPageCRCs(b[off:off+n], off)
		}
		binary.BigEndian.PutUint32(b[off+n:], crc32c(b[off:off+n]))
	}
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32c(b[tocOff:len(b)-4]))
	return b
}

func checkIndexDecode(t *testing.T, b []byte) {
	t.Helper()
	err := walkIndex(b)
	var ce *CorruptionError
	if err != nil && !errors.As(err, &ce) {
		t.Fatalf("decode error is %T, not *CorruptionError: %v", err, err)
	}
}

func testIndexBytes(t testing.TB) [][]byte {
	parent := t.TempDir()
	var out [][]byte
	for _, f := range formats {
		for _, series := range [][]testSeries{genSeries(50, 4, 1), nil} {
			m := writeTestSegmentWith(t, parent, Meta{}, series, f.opts)
			b, err := os.ReadFile(filepath.Join(parent, m.ID, indexFilename))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func FuzzIndexDecode(f *testing.F) {
	for _, b := range testIndexBytes(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("SIDX\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkIndexDecode(t, b)
		if fixed := fixIndexCRCs(b); fixed != nil {
			checkIndexDecode(t, fixed)
		}
	})
}

// TestIndexDecodeMutations runs the fuzz target's checks over seeded random
// mutations of valid indexes, with checksums fixed up, on every go test.
func TestIndexDecodeMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, orig := range testIndexBytes(t) {
		if err := walkIndex(orig); err != nil {
			t.Fatalf("valid index: %v", err)
		}
		for i := 0; i < 3000; i++ {
			b := append([]byte(nil), orig...)
			for n := 1 + rng.IntN(4); n > 0; n-- {
				switch off := rng.IntN(len(b)); rng.IntN(4) {
				case 0:
					b[off] ^= 1 << rng.IntN(8)
				case 1:
					b[off] = byte(rng.IntN(256))
				case 2:
					b[off] = 0xff
				default:
					b[off] = 0
				}
			}
			checkIndexDecode(t, b)
			checkIndexDecode(t, fixIndexCRCs(b))
		}
	}
}
