package buffer

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestMetadataSurvivesRestart: metadata appended with a batch is logged,
// comes back after a crash (the log closed without a flush), and after a
// flush that truncated the log below the cut (it is re-logged after it).
// A repeat of known metadata adds no record.
func TestMetadataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	opts := StoreOptions{Head: Options{MaxMetadataFamilies: 10}}
	s := openTestStore(t, dir, opts, sink)
	md := []ingest.FamilyMetadata{
		{Family: "up", Metadata: ingest.Metadata{Type: model.MetricTypeGauge, Help: "Up."}},
		{Family: "req_total", Metadata: ingest.Metadata{Type: model.MetricTypeCounter, Unit: "requests", Help: "Requests."}},
	}
	b := batchOf(labels.FromStrings("__name__", "up"), ingest.Sample{T: 1, V: 1})
	b.Metadata = md
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	size := s.WALSize()
	b = batchOf(labels.FromStrings("__name__", "up"), ingest.Sample{T: 2, V: 1})
	b.Metadata = md
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	want := s.head.Metadata().All()
	if len(want) != 2 {
		t.Fatalf("stored %v", want)
	}
	samplesOnly := s.WALSize() - size
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		if got := s.head.Metadata().All(); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", when, got, want)
		}
	}
	s = openTestStore(t, dir, opts, sink)
	check(s, "after a crash")
	// The second batch logged no metadata: it was as big as a batch
	// without any.
	b = batchOf(labels.FromStrings("__name__", "up"), ingest.Sample{T: 3, V: 1})
	size = s.WALSize()
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	if s.WALSize()-size != samplesOnly {
		t.Errorf("a repeat of known metadata logged %d bytes, a batch without metadata %d", samplesOnly, s.WALSize()-size)
	}
	mustFlush(t, s)
	if first, _, err := s.wal.Segments(); err != nil || first == 0 {
		t.Fatalf("the flush did not truncate the log: first segment %d, %v", first, err)
	}
	if err := s.wal.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, opts, sink)
	defer s.wal.Close()
	check(s, "after a flush and a restart")
}
