package remote

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRangedCacheSurvivesRestart: the read cache's blocks outlive the
// process. A reader restarted on the same directory answers the query it
// answered before with no GET at all (meta.json included), before and
// after its first listing; a block damaged on disk while it was down is
// found by its CRC32C, fetched again and never served; blocks of a segment
// that left the bucket meanwhile are dropped at the first listing; a
// smaller bound at start keeps the most recently written blocks within it.
func TestRangedCacheSurvivesRestart(t *testing.T) {
	f := newRangedFixture(t, 2000, true, 1<<30)
	dir := t.TempDir()
	cb := &countingBucket{Bucket: f.bucket.Bucket}
	open := func(maxBytes int64) *rangedFixture {
		t.Helper()
		r, err := New(nil, cb, newSet(t), Options{Dir: dir, Reader: true, CacheMaxBytes: maxBytes, RetryMin: 10 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		rf := *f
		rf.tier, rf.bucket = r, cb
		return &rf
	}
	one := labels.MustNewMatcher(labels.MatchEqual, "i", "s01234")
	read := func(r *rangedFixture, what string) (gets int64) {
		t.Helper()
		g0, _ := cb.counts()
		got, err := r.read(t, one)
		if err != nil || !reflect.DeepEqual(got, f.wantOf("s01234")) {
			t.Fatalf("%s: %v (or it differs)", what, err)
		}
		g1, _ := cb.counts()
		return g1 - g0
	}

	r1 := open(1 << 30)
	if err := r1.tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := read(r1, "first read"); g == 0 {
		t.Fatal("the first read made no GET")
	}
	cached := r1.tier.cache.bytes()
	if err := r1.tier.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted: the saved catalog, then the first listing.
	r2 := open(1 << 30)
	if b := r2.tier.cache.bytes(); b != cached {
		t.Fatalf("restarted cache holds %d bytes, %d before", b, cached)
	}
	if g := read(r2, "read after a restart"); g != 0 {
		t.Fatalf("read after a restart: %d GETs", g)
	}
	if err := r2.tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	r2.closeSegments()
	if g := read(r2, "read after the first listing"); g != 0 {
		t.Fatalf("read after the first listing: %d GETs", g)
	}
	if err := r2.tier.Close(); err != nil {
		t.Fatal(err)
	}

	// Damage while down: every cached block of the chunks file, one bit.
	// A block of a segment the bucket does not hold, written as the
	// cache writes one (its bytes and CRC32C), and a write cut short.
	cdir := filepath.Join(dir, "cache")
	damaged := 0
	filepath.WalkDir(cdir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "chunks") {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x10
			os.WriteFile(p, b, 0o644)
			damaged++
		}
		return nil
	})
	if damaged == 0 {
		t.Fatal("no cached chunks block")
	}
	gone := filepath.Join(cdir, "segments", "01GONEGONEGONEGONEGONEGONE")
	stray := []byte("bytes of a segment deleted from the bucket")
	if err := os.MkdirAll(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(gone, "index.0"), binary.BigEndian.AppendUint32(stray, crc32.Checksum(stray, castagnoli)), 0o644)
	tmp := filepath.Join(cdir, "segments", f.meta.ID, "index.0.tmp-abc")
	os.WriteFile(tmp, []byte("half"), 0o644)

	r3 := open(1 << 30)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("a temporary file of a cut write is left: %v", err)
	}
	if g := read(r3, "read over damaged blocks"); g == 0 {
		t.Fatal("damaged blocks were not fetched again")
	}
	if d := counterValue(r3.tier.m.damagedBlocks); d == 0 {
		t.Fatal("no damaged block found")
	}
	if _, err := os.Stat(gone); err != nil {
		t.Fatalf("the stray segment's block went before the listing: %v", err)
	}
	if err := r3.tier.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Fatalf("blocks of a segment not in the bucket are kept after the listing: %v", err)
	}
	r3.closeSegments()
	if g := read(r3, "read again"); g != 0 {
		t.Fatalf("read again after the refetch: %d GETs", g)
	}
	all := r3.tier.cache.bytes()
	if err := r3.tier.Close(); err != nil {
		t.Fatal(err)
	}

	// A smaller bound at start.
	bound := all / 2
	r4 := open(bound)
	if b := r4.tier.cache.bytes(); b > bound || b == 0 {
		t.Fatalf("restarted with a bound of %d, the cache holds %d", bound, b)
	}
	var disk int64
	filepath.WalkDir(cdir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				disk += fi.Size()
			}
		}
		return nil
	})
	if disk != r4.tier.cache.bytes() {
		t.Fatalf("%d bytes on disk, the cache counts %d", disk, r4.tier.cache.bytes())
	}
	read(r4, "read within the smaller bound")
}
