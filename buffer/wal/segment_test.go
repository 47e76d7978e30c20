package wal

import (
	"errors"
	"os"
	"testing"
)

// TestSegmentsPastEightDigits replays segments whose index outgrew the
// eight digits of their names (99999999, then 100000000): the directory
// lists "100000000" first, but replay goes in index order. Names that
// segmentPath would not write ("012", "1e3", "-0000001", which Atoi reads
// as -1 and %08d writes back alike) are not segments.
func TestSegmentsPastEightDigits(t *testing.T) {
	dir := t.TempDir()
	want := writeTestWAL(t, dir, 2, 2)
	if err := os.Rename(segmentPath(dir, 0), segmentPath(dir, 99999999)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(segmentPath(dir, 1), segmentPath(dir, 100000000)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"012", "1e3", "00000009x", "-0000001"} {
		if err := os.WriteFile(dir+"/"+name, []byte("not a segment"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []int{0, 99999999} {
		got, logs, err := replayAll(t, dir, from)
		if err != nil {
			t.Fatalf("replay from %d: %v (%s)", from, err, logs)
		}
		equalRecords(t, got, want)
	}
	got, _, err := replayAll(t, dir, 100000000)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, want[2:])
}

// TestCutRefusesNonEmptySegment checks that the WAL never appends to a
// segment file it did not start: when the next segment's file already
// holds bytes (left by something else in the directory), Cut fails and the
// file is left as it was, rather than records being appended after bytes
// that replay would read as theirs; writes are refused until the segment
// can be opened, then go on in it.
func TestCutRefusesNonEmptySegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(nil, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Log([]byte("first")); err != nil {
		t.Fatal(err)
	}
	stray := []byte("not written by this WAL")
	if err := os.WriteFile(segmentPath(dir, 1), stray, 0o666); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Cut(); err == nil {
		t.Fatalf("Cut onto a non-empty segment = %d, nil; want an error", n)
	}
	if b, err := os.ReadFile(segmentPath(dir, 1)); err != nil || string(b) != string(stray) {
		t.Fatalf("segment 1 holds %q (%v), want %q untouched", b, err, stray)
	}
	// The roll closed segment 0 and could not open segment 1: the WAL
	// refuses writes until it can, then goes on in segment 1.
	if err := w.Log([]byte("refused")); !errors.Is(err, ErrUnwritable) {
		t.Fatalf("Log while segment 1 cannot be opened = %v, want ErrUnwritable", err)
	}
	if err := os.Remove(segmentPath(dir, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Log([]byte("second")); err != nil {
		t.Fatalf("Log once segment 1 can be opened = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, logs, err := replayAll(t, dir, 0)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, logs)
	}
	equalRecords(t, got, [][]byte{[]byte("first"), []byte("second")})
	if _, err := os.Stat(segmentPath(dir, 1)); err != nil {
		t.Fatalf("the record after the failed roll is not in segment 1: %v", err)
	}
}
