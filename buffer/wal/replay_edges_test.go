package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// replayRepairAll runs ReplayRepair on dir from segment 0 and returns the
// records replayed, the report and the log. More than written records
// replayed fail the test at once.
func replayRepairAll(t *testing.T, dir string, written int) ([][]byte, RepairReport, string) {
	t.Helper()
	logger, logs := captureLogger()
	var got [][]byte
	rep, err := ReplayRepair(logger, dir, 0, func(rec []byte) error {
		if len(got) == written {
			return fmt.Errorf("more than the %d records written replayed", written)
		}
		got = append(got, bytes.Clone(rec))
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return got, rep, logs.String()
}

// TestReplayRepairMissingSegments: ReplayRepair reports segments missing
// from the middle of the log as one corruption, logs which ones are
// missing, and replays every segment around the gap.
func TestReplayRepairMissingSegments(t *testing.T) {
	dir := t.TempDir()
	recs := writeTestWAL(t, dir, 5, 2)
	for _, i := range []int{1, 2} {
		if err := os.Remove(segmentPath(dir, i)); err != nil {
			t.Fatal(err)
		}
	}
	got, rep, logs := replayRepairAll(t, dir, len(recs))
	equalRecords(t, got, append(recs[:2:2], recs[6:]...))
	if len(rep.Corruptions) != 1 || !errors.Is(rep.Corruptions[0], ErrMissingSegment) || rep.Corruptions[0].Segment != 1 || len(rep.Quarantined) != 0 {
		t.Fatalf("report %+v, want segment 1 missing", rep)
	}
	if !strings.Contains(logs, "missing_from=1 missing_to=2") {
		t.Errorf("log does not say segments 1 to 2 are missing:\n%s", logs)
	}
}

// TestMissingSegmentAfterItsPredecessor: a replay from segment 2 needs
// segment 2 when segment 1 exists, even when segment 0 does not.
func TestMissingSegmentAfterItsPredecessor(t *testing.T) {
	dir := t.TempDir()
	writeTestWAL(t, dir, 4, 1)
	for _, i := range []int{0, 2} {
		if err := os.Remove(segmentPath(dir, i)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := replayAll(t, dir, 2)
	var cerr *CorruptionError
	if !errors.As(err, &cerr) || !errors.Is(err, ErrMissingSegment) || cerr.Segment != 2 {
		t.Fatalf("replay from 2: %v, want segment 2 missing", err)
	}
}

// TestReplayRepairTornTail: a torn tail of the last segment, and nothing
// else, is repaired by ReplayRepair as by Replay (truncated, logged with
// the bytes discarded) and is not a corruption: nothing is quarantined.
func TestReplayRepairTornTail(t *testing.T) {
	dir := t.TempDir()
	recs := writeTestWAL(t, dir, 2, 4)
	path := segmentPath(dir, 1)
	offs, size := frameOffsets(t, path)
	if err := os.Truncate(path, size-3); err != nil {
		t.Fatal(err)
	}
	got, rep, logs := replayRepairAll(t, dir, len(recs))
	equalRecords(t, got, recs[:len(recs)-1])
	if len(rep.Corruptions) != 0 || len(rep.Quarantined) != 0 || rep.DiscardedBytes != 0 || rep.DamagedRanges != 0 {
		t.Errorf("report %+v, want no corruption", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, quarantineDirname)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("quarantine directory made for a torn tail (%v)", err)
	}
	last := offs[len(offs)-1]
	if st, err := os.Stat(path); err != nil || st.Size() != last {
		t.Errorf("repaired segment: %v, %v; want %d bytes", st.Size(), err, last)
	}
	if want := fmt.Sprintf("discarded_bytes=%d ", size-3-last); !strings.Contains(logs, "WAL tail repaired") || !strings.Contains(logs, want) {
		t.Errorf("log does not say the tail was repaired with %s:\n%s", want, logs)
	}
}

// TestReplayRepairDamageThenTornTail: the last segment holds a damaged
// frame and, after more good frames, a torn tail. ReplayRepair replays
// every good frame once (none twice, none lost but the two damaged), skips
// both ranges and rewrites the segment without them.
func TestReplayRepairDamageThenTornTail(t *testing.T) {
	dir := t.TempDir()
	const perSeg = 8
	recs := writeTestWAL(t, dir, 2, perSeg)
	path := segmentPath(dir, 1)
	offs, size := frameOffsets(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const bad = 3
	b[offs[bad]+frameHeaderSize+1] ^= 0x10
	b = b[:size-3]
	if err := os.WriteFile(path, b, 0o666); err != nil {
		t.Fatal(err)
	}
	got, rep, _ := replayRepairAll(t, dir, len(recs))
	var want [][]byte
	for i, rec := range recs {
		if i != perSeg+bad && i != len(recs)-1 {
			want = append(want, rec)
		}
	}
	equalRecords(t, got, want)
	last := offs[len(offs)-1]
	discarded := (offs[bad+1] - offs[bad]) + (size - 3 - last)
	if len(rep.Corruptions) != 1 || rep.Corruptions[0].Offset != offs[bad] || rep.DamagedRanges != 2 || rep.DiscardedBytes != discarded {
		t.Fatalf("report %+v, want a corruption at %d, 2 ranges, %d bytes discarded", rep, offs[bad], discarded)
	}
	again, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatalf("strict replay after repair: %v", err)
	}
	equalRecords(t, again, want)
}
