package segments

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteOrder compares segments by the order their data was written in: by
// Seq, then (for segments without a Seq, written by older versions) by ID.
// It never looks at the wall clock a ULID carries for a segment that has a
// Seq: a clock stepped back, or two segments made in one millisecond,
// change nothing.
func WriteOrder(a, b Meta) int {
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// seqFilename holds the last sequence number a Set gave out, in decimal;
// written atomically before the number is used.
const seqFilename = "sequence"

func loadSeq(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, seqFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read segment sequence: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read segment sequence %s: %w", filepath.Join(dir, seqFilename), err)
	}
	return n, nil
}

// NextSeq returns the next value of the set's write sequence, greater than
// the Seq of every segment the set has held and than every value it gave
// out before, across restarts: it is persisted (dir/sequence) before it is
// returned. A flush gives each segment it writes a new value.
func (s *Set) NextSeq() (uint64, error) {
	s.seqMtx.Lock()
	defer s.seqMtx.Unlock()
	n := s.seq + 1
	if err := writeFileAtomic(filepath.Join(s.dir, seqFilename), []byte(strconv.FormatUint(n, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("save segment sequence: %w", err)
	}
	s.seq = n
	return n, nil
}
