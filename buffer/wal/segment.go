package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// segmentRef is one segment file found in the WAL directory.
type segmentRef struct {
	index int
	path  string
}

// segmentPath returns the path of segment i: dir/%08d.
func segmentPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d", i))
}

// listSegments returns the segment files of dir in index order. Names that
// segmentPath would not write, and anything that is not a regular file, are
// ignored.
func listSegments(dir string) ([]segmentRef, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segmentRef
	for _, e := range entries {
		if !e.Type().IsRegular() || !allDigits(e.Name()) {
			continue
		}
		i, err := strconv.Atoi(e.Name())
		if err != nil || fmt.Sprintf("%08d", i) != e.Name() {
			continue // Not a name segmentPath writes (e.g. "012"): not ours.
		}
		segs = append(segs, segmentRef{index: i, path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(segs, func(a, b segmentRef) int { return a.index - b.index })
	return segs, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// syncDir fsyncs a directory so that file creations and removals in it
// are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}
