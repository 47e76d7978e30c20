package wal

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// TestReplayProgress replays from the second of several segments, most
// larger than progressEvery, and checks what the progress function sees:
// the segments to read and their bytes first, then each segment as it
// starts, reports within a segment, bytes that never go back nor past the
// total, and 100 % at the end.
func TestReplayProgress(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{SegmentSize: 6 << 20})
	rng := rand.New(rand.NewPCG(3, 4))
	rec := make([]byte, 512<<10)
	for range 30 {
		for i := range rec {
			rec[i] = byte(rng.UintN(256)) // incompressible
		}
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(segs))
	}
	var total int64
	bounds := map[int64]bool{0: true} // bytes at segment starts
	for _, s := range segs[1:] {
		st, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		bounds[total] = true
	}
	var got []Progress
	records := 0
	err = ReplayWithProgress(nil, dir, segs[1].index, func([]byte) error { records++; return nil }, func(p Progress) { got = append(got, p) })
	if err != nil {
		t.Fatal(err)
	}
	if records == 0 {
		t.Fatal("no records replayed")
	}
	first, last := segs[1].index, segs[len(segs)-1].index
	if p := got[0]; p != (Progress{First: first, Last: last, Current: -1, TotalBytes: total}) {
		t.Fatalf("first report %+v, want segments %d..%d of %d bytes, none started", p, first, last, total)
	}
	within, current := 0, -1
	for i, p := range got {
		if p.First != first || p.Last != last || p.TotalBytes != total {
			t.Fatalf("report %d: %+v changes the segments or the total", i, p)
		}
		if p.Bytes < 0 || p.Bytes > total || i > 0 && p.Bytes < got[i-1].Bytes {
			t.Fatalf("report %d: bytes %d after %d, total %d", i, p.Bytes, got[i-1].Bytes, total)
		}
		if i > 0 && (p.Current < current || p.Current < first || p.Current > last) {
			t.Fatalf("report %d: segment %d after %d, want %d..%d", i, p.Current, current, first, last)
		}
		current = p.Current
		if !bounds[p.Bytes] {
			within++
		}
	}
	if within == 0 {
		t.Fatalf("no report within a segment of %d bytes: %+v", total/2, got)
	}
	if end := got[len(got)-1]; end.Bytes != total || end.Current != last || end.Percent() != 100 {
		t.Fatalf("last report %+v (%d%%), want all %d bytes of segment %d", end, end.Percent(), total, last)
	}
	// Replaying from past the last segment reads nothing.
	got = nil
	if err := ReplayWithProgress(nil, dir, last+1, nil, func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].First != -1 || got[0].TotalBytes != 0 || got[1].Percent() != 100 {
		t.Fatalf("replay of nothing reported %+v", got)
	}
}

func TestProgressPercent(t *testing.T) {
	f := func(p Progress, want int) {
		t.Helper()
		if got := p.Percent(); got != want {
			t.Errorf("%+v.Percent() = %d, want %d", p, got, want)
		}
	}
	f(Progress{Bytes: 1, TotalBytes: 4}, 25)
	f(Progress{Bytes: 999, TotalBytes: 1000}, 99)
	f(Progress{Bytes: 0, TotalBytes: 0}, 100)
	f(Progress{Bytes: 5, TotalBytes: -1}, 100)
}

// TestReplayProgressCountsFileBytes: the reports name the segments replayed, their bytes
// never go back, they count file bytes (not decoded ones: a record of
// zeros compresses well, so decoded sizes would run ahead), and the last
// report is the whole log.
func TestReplayProgressCountsFileBytes(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(nil, dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte{0}, 20<<10) // compresses ~20x
	for range 40 {
		if err := w.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 1 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	var reports []Progress
	n := 0
	err = ReplayWithProgress(nil, dir, 0, func([]byte) error { n++; return nil }, func(p Progress) { reports = append(reports, p) })
	if err != nil || n != 40 {
		t.Fatalf("replay: %d records, %v", n, err)
	}
	var total int64
	for _, s := range segs {
		total += segmentSize(s)
	}
	last := reports[len(reports)-1]
	if last.First != segs[0].index || last.Last != segs[len(segs)-1].index || last.TotalBytes != total || last.Bytes != total || last.Percent() != 100 {
		t.Fatalf("last report %+v; segments %v, %d bytes", last, segs, total)
	}
	for i, p := range reports {
		if p.Bytes > p.TotalBytes || i > 0 && p.Bytes < reports[i-1].Bytes {
			t.Fatalf("report %d: %+v after %+v", i, p, reports[max(0, i-1)])
		}
		if p.Current >= 0 {
			var before int64 // bytes of the segments before Current
			for _, s := range segs {
				if s.index < p.Current {
					before += segmentSize(s)
				}
			}
			if p.Bytes < before || p.Bytes > before+segmentSize(segs[p.Current-segs[0].index]) {
				t.Fatalf("report %+v: bytes outside segment %d", p, p.Current)
			}
		}
	}
}
