package wal

import (
	"bytes"
	"math/rand"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
)

// TestCompressedOnlyWhenSmaller checks what a record costs on disk: one
// that compresses well is stored compressed, one that does not is stored
// as it is (never larger than itself plus the frame header), and both
// replay unchanged.
func TestCompressedOnlyWhenSmaller(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(nil, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	compressible := bytes.Repeat([]byte(`http_requests_total{host="a",route="/api/v1/query"} `), 1000)
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	for _, rec := range [][]byte{compressible, random} {
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	_, last, err := w.Segments()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	offs, size := frameOffsets(t, segmentPath(dir, last))
	if len(offs) != 2 {
		t.Fatalf("%d frames in the segment, want 2", len(offs))
	}
	if n := offs[1] - offs[0]; n > int64(len(compressible))/4 {
		t.Errorf("a %d-byte record of one repeated line takes %d bytes on disk", len(compressible), n)
	}
	if n := size - offs[1]; n != int64(frameHeaderSize+len(random)) {
		t.Errorf("a %d-byte incompressible record takes %d bytes on disk, want %d", len(random), n, frameHeaderSize+len(random))
	}
	recs, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || !slices.Equal(recs[0], compressible) || !slices.Equal(recs[1], random) {
		t.Fatalf("replayed %d records, not the two logged", len(recs))
	}
}

// TestSmallestHistogramsDecode checks that a record whose every histogram
// is as small as an encoded histogram can be (empty, one-byte deltas)
// decodes: the bound on the count a record may claim, which keeps a
// corrupt count from costing much, must not refuse it.
func TestSmallestHistogramsDecode(t *testing.T) {
	for _, n := range []int{1, 2, 50} {
		in := make([]RefHistogramSample, n)
		for i := range in {
			in[i] = RefHistogramSample{Ref: uint64(i / 2), T: int64(i), H: &histogram.Histogram{}}
		}
		rec := EncodeHistograms(nil, in)
		got, err := DecodeHistograms(rec, nil)
		if err != nil {
			t.Fatalf("%d empty histograms in %d bytes: %v", n, len(rec), err)
		}
		if !equalHistograms(got, in) {
			t.Fatalf("%d empty histograms: decoded %v", n, got)
		}
	}
}
