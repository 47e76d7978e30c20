package wal

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// newTestWAL opens a WAL in a new temporary directory and closes it at
// the end of the test (if the test has not).
func newTestWAL(t testing.TB, opts Options) *WAL {
	t.Helper()
	return openTestWAL(t, t.TempDir(), opts)
}

func openTestWAL(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(nil, dir, opts)
	if err != nil {
		t.Fatalf("open wal: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close wal: %v", err)
		}
	})
	return w
}

// replayAll returns copies of all records of dir from segment from, and
// what Replay logged.
func replayAll(t testing.TB, dir string, from int) ([][]byte, string, error) {
	t.Helper()
	logger, logs := captureLogger()
	var recs [][]byte
	err := Replay(logger, dir, from, func(rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	})
	return recs, logs.String(), err
}

// captureLogger returns a logger writing text to the returned buffer.
func captureLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// frameOffsets returns the start offset of every frame in a segment file
// and the file's size.
func frameOffsets(t testing.TB, path string) ([]int64, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	r := newSegmentReader(f, st.Size())
	var offs []int64
	for {
		off := r.off
		if _, err := r.next(false); err != nil {
			if off != st.Size() {
				t.Fatalf("frame offsets of %s: %v", path, err)
			}
			return offs, st.Size()
		}
		offs = append(offs, off)
	}
}

func equalRecords(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: got %q, want %q", i, trunc(got[i]), trunc(want[i]))
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
