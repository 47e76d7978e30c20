package wal

import (
	"errors"
	"testing"
)

// TestLargestRecord checks MaxRecordSize at its edge: a record of exactly
// MaxRecordSize bytes is logged and replays, one byte more is refused by
// Log with ErrRecordTooLarge and nothing of it is written. (The record is
// zeros: snappy makes about 12 MiB of it; the replay holds 256 MiB.)
func TestLargestRecord(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir, Options{})
	if err := w.Log(make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("Log of MaxRecordSize+1 bytes: %v, want ErrRecordTooLarge", err)
	}
	rec := make([]byte, MaxRecordSize)
	rec[0], rec[len(rec)-1] = 1, 2
	if err := w.Log(rec); err != nil {
		t.Fatalf("Log of MaxRecordSize bytes: %v", err)
	}
	if err := w.Log([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []int
	err := Replay(nil, dir, 0, func(r []byte) error {
		got = append(got, len(r))
		if len(r) == MaxRecordSize && (r[0] != 1 || r[len(r)-1] != 2) {
			t.Error("the largest record replayed with other bytes")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != MaxRecordSize || got[1] != len("after") {
		t.Fatalf("replayed records of %v bytes, want [%d 5]", got, MaxRecordSize)
	}
}
