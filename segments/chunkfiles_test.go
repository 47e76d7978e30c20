package segments

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestMultipleChunkFilesCompressed: a compressed segment (format version 7)
// also cuts its chunks files at MaxChunkFileSize, counted in bytes stored
// before compression: with values zstd cannot shrink, every file holds at
// most the limit and the bytes of one page's header, checksum, table and
// trailer, and everything reads back.
func TestMultipleChunkFilesCompressed(t *testing.T) {
	const limit = 8 << 10
	rng := rand.New(rand.NewPCG(3, 3))
	var series []testSeries
	for i := range 40 {
		ts := testSeries{lset: labels.FromStrings("__name__", "m", "i", fmt.Sprintf("%02d", i))}
		for c := range 2 {
			smp := make([]sample, 120)
			for k := range smp {
				smp[k] = sample{T: testT0 + int64(c*120+k)*testStep, V: rng.Float64() * 1e6}
			}
			ts.chunks = append(ts.chunks, testChunk{kind: KindRaw, samples: smp})
		}
		series = append(series, ts)
	}
	parent := t.TempDir()
	w, err := NewWriterWithOptions(parent, Meta{}, WriterOptions{MaxChunkFileSize: limit, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range series {
		sd := ts.data(t)
		if err := w.AddSeries(sd.Labels, sd.Chunks); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, meta.ID)
	files, err := os.ReadDir(filepath.Join(dir, chunksDirname))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("%d chunks files, want several", len(files))
	}
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > limit+64 {
			t.Errorf("chunks file %s of %d bytes, over the limit of %d and one page's overhead", f.Name(), fi.Size(), limit)
		}
	}
	s := openT(t, dir)
	got, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	equalSeries(t, series, got)
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
}
