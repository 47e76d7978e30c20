package segments

import "testing"

// TestWriterOptionsValidate: MaxChunkFileSize is in [0, maxChunkFileOffset]
// (a chunk's offset in its file has 32 bits), both ends included; 0 means
// the default.
func TestWriterOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		size int64
		ok   bool
	}{{-1, false}, {0, true}, {64 << 10, true}, {maxChunkFileOffset, true}, {maxChunkFileOffset + 1, false}} {
		if err := (WriterOptions{MaxChunkFileSize: c.size}).Validate(); (err == nil) != c.ok {
			t.Errorf("MaxChunkFileSize %d: Validate() = %v, want ok %v", c.size, err, c.ok)
		}
	}
}
