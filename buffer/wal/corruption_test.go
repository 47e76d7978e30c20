package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// writeTestWAL logs recsPerSegment records into each of segments
// segments (cutting between them), closes the WAL and returns the records.
// Records have varied sizes and some compressible text, so frames are both
// raw and snappy.
func writeTestWAL(t *testing.T, dir string, segments, recsPerSegment int) [][]byte {
	t.Helper()
	return writeTestWALOf(t, dir, segments, recsPerSegment, func(s, i int) []byte {
		return fmt.Appendf(nil, "seg%d-rec%d-%s", s, i, strings.Repeat("ab", i*17))
	})
}

// writeTestWALOf is writeTestWAL with the records rec(segment, i).
func writeTestWALOf(t *testing.T, dir string, segments, recsPerSegment int, rec func(s, i int) []byte) [][]byte {
	t.Helper()
	w, err := Open(nil, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for s := range segments {
		if s > 0 {
			if _, err := w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range recsPerSegment {
			r := rec(s, i)
			recs = append(recs, r)
			if err := w.Log(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flipBit(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o666); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRepairTail damages the last segment in ways a crash can and checks
// that Replay returns the records before the damage, cuts the file there
// with a warning, and that the WAL then appends and replays normally.
func TestRepairTail(t *testing.T) {
	const n = 10
	cases := []struct {
		name string
		// damage damages the segment given frame offsets and file size and
		// returns how many records survive and where the file is cut.
		damage func(t *testing.T, path string, offs []int64, size int64) (keep int, cut int64)
	}{
		{"torn after first header byte", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, offs[n-1]+1)
			return n - 1, offs[n-1]
		}},
		{"torn mid header", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, offs[n-1]+5)
			return n - 1, offs[n-1]
		}},
		{"torn after header", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, offs[n-1]+frameHeaderSize)
			return n - 1, offs[n-1]
		}},
		{"torn mid payload", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, (offs[n-1]+frameHeaderSize+size)/2)
			return n - 1, offs[n-1]
		}},
		{"torn one byte short", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, size-1)
			return n - 1, offs[n-1]
		}},
		{"torn in an earlier record", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			truncateFile(t, p, offs[4]+12)
			return 4, offs[4]
		}},
		{"flipped bit in last payload", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			flipBit(t, p, size-3)
			return n - 1, offs[n-1]
		}},
		{"flipped bit in last checksum", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			flipBit(t, p, offs[n-1]+6)
			return n - 1, offs[n-1]
		}},
		{"flipped bit in last type", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			flipBit(t, p, offs[n-1])
			return n - 1, offs[n-1]
		}},
		{"flipped bit in last length (longer)", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			flipBit(t, p, offs[n-1]+3)
			return n - 1, offs[n-1]
		}},
		{"zero-filled tail page", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			writeAt(t, p, size, make([]byte, 4096))
			return n, size
		}},
		{"zero-filled last record", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			writeAt(t, p, offs[n-1], make([]byte, size-offs[n-1]+1000))
			return n - 1, offs[n-1]
		}},
		{"last record with zeroed payload", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			writeAt(t, p, offs[n-1]+frameHeaderSize, make([]byte, size-offs[n-1]-frameHeaderSize))
			return n - 1, offs[n-1]
		}},
		{"short garbage after last record", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			writeAt(t, p, size, []byte{1, 2, 3})
			return n, size
		}},
		{"all zeros", func(t *testing.T, p string, offs []int64, size int64) (int, int64) {
			writeAt(t, p, 0, make([]byte, size))
			return 0, 0
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := writeTestWAL(t, dir, 1, n)
			path := segmentPath(dir, 0)
			offs, size := frameOffsets(t, path)
			if len(offs) != n {
				t.Fatalf("%d frames, want %d", len(offs), n)
			}
			keep, cut := tc.damage(t, path, offs, size)

			got, logs, err := replayAll(t, dir, 0)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			equalRecords(t, got, want[:keep])
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, path) ||
				!strings.Contains(logs, fmt.Sprintf("offset=%d", cut)) {
				t.Errorf("want a warning naming %s and offset %d, logged: %s", path, cut, logs)
			}
			if st, err := os.Stat(path); err != nil || st.Size() != cut {
				t.Fatalf("after repair: %v, %v; want size %d", st.Size(), err, cut)
			}

			// The repaired WAL takes new records and replays cleanly.
			w, err := Open(nil, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Log([]byte("new1"), []byte("new2")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, logs, err = replayAll(t, dir, 0)
			if err != nil {
				t.Fatalf("replay after repair: %v", err)
			}
			equalRecords(t, got, append(want[:keep:keep], []byte("new1"), []byte("new2")))
			if logs != "" {
				t.Errorf("second replay logged: %s", logs)
			}
		})
	}
}

// TestOpenRepairsTail checks that Open alone repairs a torn tail, so that
// logging without a replay first cannot leave it in the middle of the log.
func TestOpenRepairsTail(t *testing.T) {
	dir := t.TempDir()
	want := writeTestWAL(t, dir, 1, 5)
	path := segmentPath(dir, 0)
	_, size := frameOffsets(t, path)
	truncateFile(t, path, size-2)

	m := NewMetrics(nil)
	logger, logs := captureLogger()
	w, err := Open(logger, dir, Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("Open repaired without a warning: %s", logs)
	}
	if got := counterValue(t, m.Repairs); got != 1 {
		t.Errorf("repairs metric %v, want 1", got)
	}
	got, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, append(want[:4:4], []byte("new")))
}

// TestCorruption checks damage that must not be repaired: it is reported
// as a *CorruptionError naming the segment and the offset of the first
// bad record.
// corruptionCase damages one segment of a WAL that writeTestWAL wrote with
// corruptSegs segments of corruptRecs records each.
type corruptionCase struct {
	name string
	seg  int // segment to damage
	// damage returns the offset the error must report.
	damage func(t *testing.T, path string, offs []int64, size int64) int64
	is     error // if set, errors.Is(err, is) must hold
}

const corruptSegs, corruptRecs = 3, 6

var corruptionCases = []corruptionCase{
	{"flipped bit in middle segment", 1, func(t *testing.T, p string, offs []int64, size int64) int64 {
		flipBit(t, p, offs[2]+frameHeaderSize+1)
		return offs[2]
	}, errChecksum},
	{"flipped bit in last record of middle segment", 1, func(t *testing.T, p string, offs []int64, size int64) int64 {
		flipBit(t, p, size-1)
		return offs[corruptRecs-1]
	}, errChecksum},
	{"torn middle segment", 0, func(t *testing.T, p string, offs []int64, size int64) int64 {
		truncateFile(t, p, size-4)
		return offs[corruptRecs-1]
	}, errTorn},
	{"zero tail in middle segment", 1, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, size, make([]byte, 100))
		return size
	}, errZeroTail},
	{"flipped bit before the tail of last segment", 2, func(t *testing.T, p string, offs []int64, size int64) int64 {
		flipBit(t, p, offs[3]+frameHeaderSize)
		return offs[3]
	}, errChecksum},
	{"bad type before the tail of last segment", 2, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, offs[1], []byte{0x7f})
		return offs[1]
	}, nil},
	{"zeros then data in last segment", 2, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, offs[2], make([]byte, offs[4]-offs[2]))
		return offs[2]
	}, nil},
	// A length running past the end of the file is a torn tail only
	// for the last record of the last segment.
	{"length past EOF before the tail of last segment", 2, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, offs[2]+1, []byte{0xff, 0xff, 0xff, 0x0f})
		return offs[2]
	}, errLengthPastEOF},
	// Only one good frame follows, and it ends exactly at the end of
	// the file: still damage, not a torn tail.
	{"length past EOF in the next-to-last record of last segment", 2, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, offs[corruptRecs-2]+1, []byte{0xff, 0xff, 0xff, 0x0f})
		return offs[corruptRecs-2]
	}, errLengthPastEOF},
	{"length past EOF in middle segment", 1, func(t *testing.T, p string, offs []int64, size int64) int64 {
		writeAt(t, p, offs[1]+1, []byte{0xff, 0xff, 0x00, 0x00})
		return offs[1]
	}, errLengthPastEOF},
}

func TestCorruption(t *testing.T) {
	const segs, n = corruptSegs, corruptRecs
	for _, tc := range corruptionCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestWAL(t, dir, segs, n)
			path := segmentPath(dir, tc.seg)
			offs, size := frameOffsets(t, path)
			wantOff := tc.damage(t, path, offs, size)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			got, _, err := replayAll(t, dir, 0)
			var cerr *CorruptionError
			if !errors.As(err, &cerr) {
				t.Fatalf("replay: %v, want *CorruptionError", err)
			}
			if cerr.Segment != tc.seg || cerr.Path != path || cerr.Offset != wantOff {
				t.Errorf("corruption at segment %d %s offset %d, want %d %s %d",
					cerr.Segment, cerr.Path, cerr.Offset, tc.seg, path, wantOff)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprint(wantOff)) {
				t.Errorf("error %q does not name file and offset", err)
			}
			if len(got) == 0 && (tc.seg > 0 || wantOff > 0) {
				t.Error("no records replayed before the corruption")
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(before) != string(after) {
				t.Error("replay modified a corrupt segment")
			}
			if tc.seg == segs-1 {
				if _, err := Open(nil, dir, Options{}); !errors.As(err, &cerr) {
					t.Errorf("open: %v, want *CorruptionError", err)
				}
			}
		})
	}
}

// TestReplayRepair damages the WAL as TestCorruption does: ReplayRepair
// must replay every record but those whose frames the damage touched (it
// resynchronises on the next good frame), keep a byte-for-byte copy of the
// damaged segment in quarantine, rewrite the segment without the damage,
// and leave a log that a strict Replay then reads without error.
func TestReplayRepair(t *testing.T) {
	for _, tc := range corruptionCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := writeTestWAL(t, dir, corruptSegs, corruptRecs)
			path := segmentPath(dir, tc.seg)
			offs, size := frameOffsets(t, path)
			clean, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			wantOff := tc.damage(t, path, offs, size)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lost := touchedFrames(clean, damaged, offs)
			var want [][]byte
			for i, rec := range recs {
				if i/corruptRecs != tc.seg || !lost[i%corruptRecs] {
					want = append(want, rec)
				}
			}
			checkRepair(t, dir, path, damaged, want, wantOff)
		})
	}
}

// touchedFrames reports, for each frame of a clean segment (starting at
// offs), whether damaged differs from clean anywhere in it.
func touchedFrames(clean, damaged []byte, offs []int64) []bool {
	lost := make([]bool, len(offs))
	for i, o := range offs {
		end := int64(len(clean))
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		lost[i] = end > int64(len(damaged)) || !bytes.Equal(clean[o:end], damaged[o:end])
	}
	return lost
}

// checkRepair runs ReplayRepair on dir, whose segment path holds the
// damaged bytes with its first damage at firstOff, and checks that it
// replays want, reports and quarantines the damage, and leaves a log a
// strict replay reads as want.
func checkRepair(t *testing.T, dir, path string, damaged []byte, want [][]byte, firstOff int64) {
	t.Helper()
	logger, logs := captureLogger()
	var got [][]byte
	rep, err := ReplayRepair(logger, dir, 0, func(rec []byte) error {
		got = append(got, bytes.Clone(rec))
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, want)
	if len(rep.Corruptions) != 1 || rep.Corruptions[0].Offset != firstOff || len(rep.Quarantined) != 1 || rep.DamagedRanges < 1 {
		t.Fatalf("report %+v, want one corruption at %d with a copy", rep, firstOff)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), path) {
		t.Errorf("no error log naming %s:\n%s", path, logs)
	}
	if cp, err := os.ReadFile(rep.Quarantined[0]); err != nil || !bytes.Equal(cp, damaged) {
		t.Errorf("quarantined copy differs from the damaged segment (%v)", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != int64(len(damaged))-rep.DiscardedBytes {
		t.Errorf("repaired segment has %d bytes, want %d - %d discarded (%v)", st.Size(), len(damaged), rep.DiscardedBytes, err)
	}
	again, _, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatalf("strict replay after repair: %v", err)
	}
	equalRecords(t, again, want)
}

// TestReplayRepairResyncs flips bits at several places of one segment of
// many frames: ReplayRepair must lose exactly the records whose frames
// hold a flipped bit, and keep every other one, before and after each
// damage, against the model of what was logged.
func TestReplayRepairResyncs(t *testing.T) {
	const segs, n = 2, 200
	cases := []struct {
		name  string
		flips func(offs []int64, size int64) []int64 // offsets to flip
	}{
		{"one payload in the middle", func(offs []int64, size int64) []int64 { return []int64{offs[100] + frameHeaderSize + 2} }},
		{"one length", func(offs []int64, size int64) []int64 { return []int64{offs[50] + 2} }},
		{"one length high byte", func(offs []int64, size int64) []int64 { return []int64{offs[50] + 4} }},
		{"one type", func(offs []int64, size int64) []int64 { return []int64{offs[7]} }},
		{"one checksum", func(offs []int64, size int64) []int64 { return []int64{offs[120] + 6} }},
		{"first frame", func(offs []int64, size int64) []int64 { return []int64{3} }},
		{"several apart", func(offs []int64, size int64) []int64 {
			return []int64{offs[10] + 1, offs[40] + frameHeaderSize, offs[41] + 3, offs[90] + 7, offs[150] + frameHeaderSize + 5}
		}},
		{"two frames apart by one", func(offs []int64, size int64) []int64 { return []int64{offs[60] + 2, offs[62] + 12} }},
		{"every tenth frame", func(offs []int64, size int64) []int64 {
			var fl []int64
			for i := 5; i < len(offs)-1; i += 10 {
				fl = append(fl, offs[i]+int64(i%frameHeaderSize))
			}
			return fl
		}},
	}
	for _, seg := range []int{0, segs - 1} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("segment %d/%s", seg, tc.name), func(t *testing.T) {
				dir := t.TempDir()
				recs := writeResyncWAL(t, dir, segs, n)
				path := segmentPath(dir, seg)
				offs, size := frameOffsets(t, path)
				clean, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				damaged := bytes.Clone(clean)
				flips := tc.flips(offs, size)
				for _, o := range flips {
					damaged[o] ^= 0x10
				}
				if err := os.WriteFile(path, damaged, 0o666); err != nil {
					t.Fatal(err)
				}
				lost := touchedFrames(clean, damaged, offs)
				var want [][]byte
				first := int64(-1)
				for i, rec := range recs {
					if i/n == seg && lost[i%n] {
						if first < 0 {
							first = offs[i%n]
						}
						continue
					}
					want = append(want, rec)
				}
				checkRepair(t, dir, path, damaged, want, first)
			})
		}
	}
}

// writeResyncWAL logs n records of varied sizes and contents (raw and
// snappy frames, bytes that look like frame types and small lengths) into
// each of segments segments.
func writeResyncWAL(t *testing.T, dir string, segments, n int) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(16, 3))
	return writeTestWALOf(t, dir, segments, n, func(s, i int) []byte {
		rec := fmt.Appendf(nil, "seg%d-rec%d|", s, i)
		for range rng.IntN(300) {
			switch rng.IntN(3) {
			case 0:
				rec = append(rec, byte(rng.IntN(3))) // 0, 1, 2: zero and frame types
			case 1:
				rec = append(rec, "abcabc"...)
			default:
				rec = append(rec, byte(rng.UintN(256)))
			}
		}
		return rec
	})
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	want := writeTestWAL(t, dir, 4, 2)
	if err := os.Remove(segmentPath(dir, 2)); err != nil {
		t.Fatal(err)
	}
	f := func(from int, wantRecs [][]byte, wantMissing int) {
		t.Helper()
		got, _, err := replayAll(t, dir, from)
		if wantMissing < 0 {
			if err != nil {
				t.Fatalf("replay from %d: %v", from, err)
			}
			equalRecords(t, got, wantRecs)
			return
		}
		var cerr *CorruptionError
		if !errors.As(err, &cerr) || !errors.Is(err, ErrMissingSegment) || cerr.Segment != wantMissing {
			t.Fatalf("replay from %d: %v, want missing segment %d", from, err, wantMissing)
		}
	}
	f(0, nil, 2)
	f(1, nil, 2)
	f(2, nil, 2) // Segment 1 exists, so 2 must.
	f(3, want[6:], -1)

	// A truncated prefix is not a gap: replay starts at the first segment.
	if err := os.Remove(segmentPath(dir, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segmentPath(dir, 1)); err != nil {
		t.Fatal(err)
	}
	f(0, want[6:], -1)
}

func TestEmptySegmentFiles(t *testing.T) {
	dir := t.TempDir()
	want := writeTestWAL(t, dir, 2, 3)
	// Move segment 1 to 2, leaving an empty 1 in the middle and an empty 3
	// at the end (as a crash right after creating a segment would).
	if err := os.Rename(segmentPath(dir, 1), segmentPath(dir, 2)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 3} {
		if err := os.WriteFile(segmentPath(dir, i), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	got, logs, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, want)
	if logs != "" {
		t.Errorf("replay of empty segments logged: %s", logs)
	}
	w := openTestWAL(t, dir, Options{})
	if _, last, _ := w.Segments(); last != 3 {
		t.Errorf("last segment %d, want the empty 3 reused", last)
	}
}

func TestReplayCallbackError(t *testing.T) {
	dir := t.TempDir()
	writeTestWAL(t, dir, 1, 3)
	stop := errors.New("stop")
	calls := 0
	err := Replay(nil, dir, 0, func([]byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("replay: %v after %d calls, want stop after 2", err, calls)
	}
	if err := Replay(nil, t.TempDir()+"/missing", 0, nil); err != nil {
		t.Errorf("replay of a missing dir: %v", err)
	}
}
