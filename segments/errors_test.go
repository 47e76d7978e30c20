package segments

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestCorruptionErrorText: a corruption error names the segment directory
// (set once, by the first withDir: Open's), the file, and the offset when
// there is one (0 is one; a negative offset means none), and unwraps to
// its cause.
func TestCorruptionErrorText(t *testing.T) {
	for _, c := range []struct {
		off  int64
		want string
	}{
		{-1, "corrupt segment /d/01A: index: bad 7"},
		{0, "corrupt segment /d/01A: index at offset 0: bad 7"},
		{12, "corrupt segment /d/01A: index at offset 12: bad 7"},
	} {
		err := withDir(fmt.Errorf("open: %w", corruptf("index", c.off, "bad %d", 7)), "/d/01A")
		err = withDir(err, "/elsewhere") // the first one stays
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.Error() != c.want {
			t.Errorf("offset %d: %q, want %q", c.off, ce, c.want)
		}
	}
	ce := &CorruptionError{Dir: "/d", File: "meta.json", Offset: -1, Err: io.ErrUnexpectedEOF}
	if !errors.Is(ce, io.ErrUnexpectedEOF) {
		t.Error("a corruption error does not unwrap to its cause")
	}
	if err := withDir(io.EOF, "/d"); err != io.EOF {
		t.Errorf("withDir of another error: %v", err)
	}
}
