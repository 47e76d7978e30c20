package buffer

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/ingest"
)

// TestReLogRecordsSplit: the records a flush logs again after its cut
// (SeriesRecords, MetadataRecords, ExemplarRecords) hold everything the
// head holds, once, in order, cut into records of at most maxPerRecord
// entries (whole series of exemplars, a record closed once it reaches
// the count), at counts that divide the total and counts that do not.
func TestReLogRecordsSplit(t *testing.T) {
	dir := t.TempDir()
	opts := StoreOptions{Head: Options{MaxExemplars: 100, MaxMetadataFamilies: 100}}
	s := openTestStore(t, dir, opts, nopSink{filepath.Join(dir, "segments")})
	defer s.wal.Close()
	const n = 5
	for i := range n {
		lset := labels.FromStrings("__name__", fmt.Sprintf("m%d", i))
		b := batchOf(lset, ingest.Sample{T: 1, V: 1})
		b.Metadata = []ingest.FamilyMetadata{{Family: fmt.Sprintf("m%d", i), Metadata: ingest.Metadata{Type: "gauge", Help: "h"}}}
		b.Exemplars = []ingest.SeriesExemplars{{Labels: lset, Exemplars: []ingest.Exemplar{{T: 1, V: float64(i)}}}}
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	h := s.Head()
	sizes := func(k int) []int { // ceil(n/k) records of k, the last one the rest
		var want []int
		for left := n; left > 0; left -= min(left, k) {
			want = append(want, min(left, k))
		}
		return want
	}
	for _, k := range []int{1, 2, 3, 5, 6} {
		want := sizes(k)

		var got []int
		var refs []uint64
		for _, rec := range h.SeriesRecords(k) {
			ss, err := wal.DecodeSeries(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(ss))
			for _, x := range ss {
				refs = append(refs, x.Ref)
			}
		}
		if !slices.Equal(got, want) || len(refs) != n || !slices.IsSorted(refs) || len(slices.Compact(slices.Clone(refs))) != n {
			t.Errorf("SeriesRecords(%d): records of %v series, refs %v; want records of %v, %d distinct refs in order", k, got, refs, want, n)
		}

		got = got[:0]
		var fams []string
		for _, rec := range h.MetadataRecords(k) {
			md, err := wal.DecodeMetadata(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(md))
			for _, m := range md {
				fams = append(fams, m.Family)
			}
		}
		if !slices.Equal(got, want) || !slices.Equal(fams, []string{"m0", "m1", "m2", "m3", "m4"}) {
			t.Errorf("MetadataRecords(%d): records of %v, families %v; want records of %v, m0 to m4", k, got, fams, want)
		}

		got = got[:0]
		var vals []float64
		recs := h.ExemplarRecords(k)
		for i, rec := range recs {
			ex, err := wal.DecodeExemplars(rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 { // the reset
				if len(ex) != 0 {
					t.Errorf("ExemplarRecords(%d) starts with %v, want an empty record (a reset)", k, ex)
				}
				continue
			}
			got = append(got, len(ex))
			for _, se := range ex {
				for _, e := range se.Exemplars {
					vals = append(vals, e.V)
				}
			}
		}
		if !slices.Equal(got, want) || !slices.Equal(vals, []float64{0, 1, 2, 3, 4}) {
			t.Errorf("ExemplarRecords(%d): a reset and records of %v series, values %v; want records of %v, 0 to 4", k, got, vals, want)
		}
	}
}
