package wal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// segmentFile writes the frames of recs to a new file and returns it,
// open for reading, with its size.
func segmentFile(t *testing.T, recs ...[]byte) (*os.File, int64) {
	t.Helper()
	var b []byte
	for _, r := range recs {
		b = appendFrame(b, r)
	}
	path := filepath.Join(t.TempDir(), "00000000")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, int64(len(b))
}

// randomBytes returns n incompressible bytes (stored as a raw frame).
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// nextWithin calls r.next, failing the test if it has not returned after a
// minute (a reader retrying a read that can never succeed spins forever).
func nextWithin(t *testing.T, r *segmentReader) ([]byte, error) {
	t.Helper()
	type result struct {
		rec []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		rec, err := r.next(true)
		done <- result{bytes.Clone(rec), err}
	}()
	select {
	case res := <-done:
		return res.rec, res.err
	case <-time.After(time.Minute):
		t.Fatal("segment reader still reading after a minute")
		return nil, nil
	}
}

// TestReaderBufferBySegmentSize: the read buffer is the segment's size for
// a segment under readBufSize (replaying many small segments does not set
// aside 1 MiB for each), and readBufSize for a larger one, however large
// (a 128 MiB segment is not read into memory whole).
func TestReaderBufferBySegmentSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	small := randomBytes(rng, 100)
	f, size := segmentFile(t, small)
	r := newSegmentReader(f, size)
	if len(r.buf) != int(size) {
		t.Errorf("read buffer of a %d-byte segment: %d bytes", size, len(r.buf))
	}
	if rec, err := r.next(true); err != nil || !bytes.Equal(rec, small) {
		t.Fatalf("small segment: %d bytes, %v", len(rec), err)
	}
	if _, err := r.next(true); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	var recs [][]byte
	for range 40 {
		recs = append(recs, randomBytes(rng, 64<<10))
	}
	f, size = segmentFile(t, recs...)
	r = newSegmentReader(f, size)
	for i, want := range recs {
		rec, err := r.next(true)
		if err != nil || !bytes.Equal(rec, want) {
			t.Fatalf("record %d: %d bytes, %v", i, len(rec), err)
		}
		if len(r.buf) != readBufSize {
			t.Fatalf("read buffer of a %d-byte segment of 64 KiB records: %d bytes, want %d", size, len(r.buf), readBufSize)
		}
	}
	if _, err := r.next(true); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
}

// TestReaderEmptyLastRecord: an empty record (Log accepts it) last in a
// segment, a frame header and nothing after it, is that record, not a torn
// tail.
func TestReaderEmptyLastRecord(t *testing.T) {
	small := []byte("small")
	f, size := segmentFile(t, small, nil)
	r := newSegmentReader(f, size)
	for i, want := range [][]byte{small, {}} {
		if rec, err := r.next(true); err != nil || !bytes.Equal(rec, want) {
			t.Fatalf("record %d of a segment ending in an empty record: %d bytes, %v", i, len(rec), err)
		}
	}
	if _, err := r.next(true); err != io.EOF {
		t.Fatalf("after an empty last record: %v, want io.EOF", err)
	}

}

// TestReaderFileShrinks: a segment cut shorter than the size its reader
// was opened with (the writer's repair truncating it) gives the records
// still whole, then io.ErrUnexpectedEOF, not a spin on the missing bytes.
// The first record is larger than the read buffer, and the cut falls
// exactly at its end: the read that completes it meets the end of the file.
func TestReaderFileShrinks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	big := randomBytes(rng, readBufSize+readBufSize/2)
	f, size := segmentFile(t, big, randomBytes(rng, 100), randomBytes(rng, 100))
	r := newSegmentReader(f, size)
	cut := int64(frameHeaderSize + len(big))
	if err := os.Truncate(f.Name(), cut); err != nil {
		t.Fatal(err)
	}
	rec, err := nextWithin(t, r)
	if err != nil || !bytes.Equal(rec, big) {
		t.Fatalf("record before the cut: %d bytes, %v", len(rec), err)
	}
	if _, err := nextWithin(t, r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("record past the cut: %v, want io.ErrUnexpectedEOF", err)
	}

	// Cut in the middle of a small segment's second record.
	first, second := randomBytes(rng, 100), randomBytes(rng, 100)
	f, size = segmentFile(t, first, second)
	r = newSegmentReader(f, size)
	if err := os.Truncate(f.Name(), size-50); err != nil {
		t.Fatal(err)
	}
	if rec, err := nextWithin(t, r); err != nil || !bytes.Equal(rec, first) {
		t.Fatalf("record before the cut: %d bytes, %v", len(rec), err)
	}
	if _, err := nextWithin(t, r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("record across the cut: %v, want io.ErrUnexpectedEOF", err)
	}

	// Asked whether only zeros follow an offset, of a zero-filled segment
	// cut shorter: the read's error, not a spin on the missing bytes.
	f, size = segmentFile(t)
	if err := os.WriteFile(f.Name(), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	r = newSegmentReader(f, 64<<10)
	if err := os.Truncate(f.Name(), 10<<10); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.zeroFrom(0)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("zeroFrom over the cut: %v, want io.EOF", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("zeroFrom still reading after a minute")
	}
}

// TestReaderReadError: a failed read is returned to the caller, not
// retried (here the "segment" is a directory: every read fails with
// EISDIR).
func TestReaderReadError(t *testing.T) {
	d, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := newSegmentReader(d, 100)
	if _, err := nextWithin(t, r); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("next on an unreadable segment: %v, want EISDIR", err)
	}
}

// TestLengthPastEOFAtScanEdges: a frame whose length field was damaged to
// run past the end of the segment is corruption, not a torn tail, when a
// good frame follows within followScan bytes of its header, at the edges
// of that window: the next frame's header at exactly followScan bytes
// (the largest record the scan is sure to see past), a next frame whose
// payload is exactly followScan bytes long, and the least that can follow
// (an empty record's frame, which Log accepts).
func TestLengthPastEOFAtScanEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		name          string
		damaged, next []byte
	}{
		{"next header at the window's end", randomBytes(rng, followScan), randomBytes(rng, 10)},
		{"next payload of followScan bytes", randomBytes(rng, 100), randomBytes(rng, followScan)},
		{"both records empty", []byte{}, []byte{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, size := segmentFile(t, c.damaged, c.next)
			if b := appendFrame(nil, c.damaged); b[0] != frameRaw || len(b) != frameHeaderSize+len(c.damaged) {
				t.Fatalf("the damaged record is not stored raw")
			}
			w, err := os.OpenFile(f.Name(), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, 1); err != nil { // the length
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = newSegmentReader(f, size).next(true)
			var fe *frameError
			if !errors.As(err, &fe) || fe.tail || !errors.Is(err, errLengthPastEOF) || fe.off != 0 {
				t.Fatalf("damaged length with a good frame behind it: %#v, want corruption (%v) at offset 0", err, errLengthPastEOF)
			}
		})
	}
}

// TestResyncEdges: where resync finds the next good frame after damage (a
// run of bytes no frame starts at): the least frame there is (an empty
// record, the last 9 bytes of the segment), a raw frame whose payload
// does not read as snappy, a frame longer than followScan, and a snappy
// frame of a record of MaxRecordSize; none when fewer bytes than a frame
// header are left; and a failed read is returned, here and when looking
// for a frame behind a damaged length.
func TestResyncEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	garbage := bytes.Repeat([]byte{0xff}, 100) // 0xff is no frame type
	notSnappy := append([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, randomBytes(rng, 100)...)
	if b := appendFrame(nil, notSnappy); b[0] != frameRaw {
		t.Fatal("the record that does not read as snappy is not stored raw")
	}
	huge := make([]byte, MaxRecordSize)
	for _, c := range []struct {
		name string
		rec  []byte
		from int64 // where resync starts, from the start of the garbage
	}{
		{"empty record", []byte{}, 0},
		{"empty record, from its frame", []byte{}, int64(len(garbage))},
		{"raw payload that is no snappy block", notSnappy, 0},
		{"longer than followScan", randomBytes(rng, followScan+1), 0},
		{"snappy record of MaxRecordSize", huge, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b []byte
			b = append(b, garbage...)
			b = appendFrame(b, c.rec)
			path := filepath.Join(t.TempDir(), "00000000")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := newSegmentReader(f, int64(len(b)))
			if off, err := r.resync(c.from); err != nil || off != int64(len(garbage)) {
				t.Fatalf("resync(%d) = %d, %v; want the frame at %d", c.from, off, err, len(garbage))
			}
			r.seek(int64(len(garbage)))
			if rec, err := r.next(true); err != nil || !bytes.Equal(rec, c.rec) {
				t.Fatalf("the frame resync found: %d bytes, %v", len(rec), err)
			}
			for from := int64(len(b)) - frameHeaderSize + 1; from <= int64(len(b)); from++ {
				if off, err := r.resync(from); err != nil || off != -1 {
					t.Fatalf("resync(%d) of %d bytes = %d, %v; want -1", from, len(b), off, err)
				}
			}
		})
	}

	d, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := newSegmentReader(d, 100)
	if _, err := r.resync(0); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("resync on an unreadable segment: %v, want EISDIR", err)
	}
	if _, err := r.frameFollows(0); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("frameFollows on an unreadable segment: %v, want EISDIR", err)
	}
}
