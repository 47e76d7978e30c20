package buffer

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-tsdb/strata/buffer/wal"
)

// TestStoreOptionsValidate: StoreOptions.Validate refuses what the head's
// and the log's own Validate refuse, and a block that is not a whole
// number of chunk ranges, at the edges (a block of exactly one chunk
// range is valid, one range less is not); OpenStore refuses the same.
// The server validates its configuration with it before it opens
// anything.
func TestStoreOptionsValidate(t *testing.T) {
	hour := int64(3_600_000)
	for _, c := range []struct {
		name string
		o    StoreOptions
		err  string // "" when valid
	}{
		{"zero", StoreOptions{}, ""},
		{"defaults", DefaultStoreOptions(), ""},
		{"block of one chunk range", StoreOptions{Head: Options{ChunkRange: hour}, BlockDuration: hour}, ""},
		{"block of three chunk ranges", StoreOptions{Head: Options{ChunkRange: hour}, BlockDuration: 3 * hour}, ""},
		{"block shorter than a chunk range", StoreOptions{Head: Options{ChunkRange: hour}, BlockDuration: hour - 1000}, "multiple of the chunk range"},
		{"block not a multiple", StoreOptions{Head: Options{ChunkRange: 2 * hour}, BlockDuration: 3 * hour}, "multiple of the chunk range"},
		{"negative block", StoreOptions{BlockDuration: -2 * hour}, "multiple of the chunk range"},
		{"negative max head samples", StoreOptions{MaxHeadSamples: -1}, "max head samples"},
		{"negative samples per series", StoreOptions{FlushSamplesPerSeries: -1}, ""},
		{"bad head option", StoreOptions{Head: Options{ChunkSamples: 1}}, "chunk samples"},
		{"bad head limit", StoreOptions{Head: Options{MaxSeries: -1}}, "max series"},
		{"bad log option", StoreOptions{WAL: wal.Options{SegmentSize: -1}}, "wal: segment size"},
	} {
		err := c.o.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.err)
		}
		if c.err == "" {
			continue
		}
		dir := t.TempDir()
		if s, err := OpenStore(slog.New(slog.DiscardHandler), dir, c.o, nopSink{filepath.Join(dir, "segments")}, nil); err == nil {
			_ = s.wal.Close()
			t.Errorf("%s: OpenStore opened a store", c.name)
		}
	}
}
