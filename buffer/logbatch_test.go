package buffer

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// TestBatchLogsWhatItHolds: a batch logs a record of each kind it has
// something for, and no other: the record of a series only the first time
// in a log epoch, metadata only when it changes the store, and never an
// empty record (an empty exemplars record is a reset to replay).
func TestBatchLogsWhatItHolds(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{Head: Options{MaxMetadataFamilies: 10, MaxExemplars: 10}}, nopSink{filepath.Join(dir, "segments")})
	a := labels.FromStrings("__name__", "a")
	md := []ingest.FamilyMetadata{{Family: "a", Metadata: ingest.Metadata{Type: "gauge", Help: "h"}}}
	b := batchOf(a, ingest.Sample{T: 1, V: 1})
	b.Metadata = md
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	b = batchOf(a, ingest.Sample{T: 2, V: 2})
	b.Metadata = md // unchanged
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(histBatch(labels.FromStrings("__name__", "h"), segments.Sample{T: 3, H: testHistogram(1, false)})); err != nil {
		t.Fatal(err)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := wal.Replay(slog.New(slog.DiscardHandler), filepath.Join(dir, "wal"), 0, func(rec []byte) error {
		got = append(got, wal.RecordType(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		wal.RecordSeries, wal.RecordSamples, wal.RecordMetadata, // the first batch
		wal.RecordSamples,                      // the second
		wal.RecordSeries, wal.RecordHistograms, // the third
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records of types %v logged, want %v", got, want)
	}
}
