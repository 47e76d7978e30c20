package buffer

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
)

// TestMaxSeriesLoweredAcrossRestart: a restart with MaxSeries below the
// series the log holds replays them all (replay does not drop data), and
// then, as Options.MaxSeries says, existing series keep ingesting while a
// request with a new series is refused whole.
func TestMaxSeriesLoweredAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	sink := nopSink{filepath.Join(dir, "segments")}
	s := openTestStore(t, dir, StoreOptions{}, sink)
	lsets := flushSeries(3)
	for i, lset := range lsets {
		mustAppend(t, s, lset, 1000, float64(i))
	}
	if err := s.wal.Close(); err != nil { // as after kill -9
		t.Fatal(err)
	}
	s = openTestStore(t, dir, StoreOptions{Head: Options{MaxSeries: 2}}, sink)
	defer s.wal.Close()
	if n := s.Head().NumSeries(); n != 3 {
		t.Fatalf("%d series replayed under a limit of 2, want all 3", n)
	}
	b := &ingest.Batch{}
	for _, lset := range lsets {
		b.Series = append(b.Series, ingest.Series{Labels: lset, Samples: []ingest.Sample{{T: 2000, V: 1}}})
	}
	if err := s.Append(b); err != nil {
		t.Fatalf("a request to the existing series over the lowered limit: %v, want it taken", err)
	}
	b.Series = append(b.Series, ingest.Series{Labels: labels.FromStrings("__name__", "m", "i", "new"), Samples: []ingest.Sample{{T: 2000, V: 1}}})
	if err := s.Append(b); !errors.Is(err, ErrTooManySeries) {
		t.Fatalf("a request with a new series over the limit: %v, want ErrTooManySeries", err)
	}
}
