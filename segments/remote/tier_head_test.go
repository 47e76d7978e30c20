package remote

import (
	"math"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// TestUploadWaitsForHead: a segment whose day is over as the compactor
// sees it is not uploaded while the head still holds samples of that day
// (a flush that ran while they came left them there, after other series'
// next day): they reach a later flush, and the day would be compacted
// again and replaced in the bucket. Once the head holds none, it is. The
// same for a segment made final by UploadAfter while the head holds
// samples of its time or before.
func TestUploadWaitsForHead(t *testing.T) {
	srv := s3test.Start(t)
	day := 24 * time.Hour

	set := newSet(t)
	d0 := writeSegment(t, set, 5, t0, t0.Add(day-time.Minute))
	writeSegment(t, set, 5, t0.Add(day), t0.Add(day+2*time.Hour)) // day 1: day 0 is over
	headMin := t0.Add(20 * time.Hour).UnixMilli()                 // a series' samples of day 0
	w := newTier(t, srv, set, "hw", Options{Ranges: []int64{time.Hour.Milliseconds(), day.Milliseconds()},
		HeadMinTime: func() int64 { return headMin }})
	mustSync(t, w)
	if keys := srv.Keys("hw/" + segmentPrefix(d0.ID)); len(keys) != 0 {
		t.Fatalf("day 0 was uploaded while the head held samples of it: %v", keys)
	}
	if st := w.Status(); st.BucketSegments != 0 {
		t.Fatalf("status %+v, want nothing in the bucket", st)
	}
	headMin = t0.Add(day + 3*time.Hour).UnixMilli() // flushed: the head holds day 1 only
	mustSync(t, w)
	if got := w.Metas(); len(got) != 1 || got[0].ID != d0.ID {
		t.Fatalf("bucket catalog %v, want day 0 alone", got)
	}

	set2 := newSet(t)
	old := writeSegment(t, set2, 5, t0, t0.Add(2*time.Hour))
	now := t0.Add(49 * time.Hour)
	head2 := t0.Add(time.Hour).UnixMilli()
	w2 := newTier(t, srv, set2, "hu", Options{UploadAfter: day, Now: func() time.Time { return now },
		HeadMinTime: func() int64 { return head2 }})
	mustSync(t, w2)
	if len(w2.Metas()) != 0 {
		t.Fatal("a segment old enough was uploaded while the head held samples of its time")
	}
	head2 = math.MaxInt64 // an empty head
	mustSync(t, w2)
	if got := w2.Metas(); len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("bucket catalog %v, want the old segment", got)
	}
}
