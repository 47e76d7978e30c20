package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func loadTestCache(t *testing.T, dir string, clk *fakeClock) *Cache {
	t.Helper()
	c, err := Load(dir, testOptions(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"ta"}, n.fn("A", 0, nil))
	mustGet(t, c, "b", []string{"tb"}, n.fn("B", 0, nil))
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB
	if err := c.Set([]byte("big"), []string{"tb"}, c.Snapshot(), big, 0); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("ta") // "a" is invalid and must stay so after the restart
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(dir); err != nil { // a second save replaces the first
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if strings.Join(names, " ") != "clean data.2 generations" {
		t.Fatalf("saved files: %v", names)
	}
	_ = c.Close()

	clk.Advance(10 * time.Second)
	c2 := loadTestCache(t, dir, clk)
	expectGet(t, c2, "a", "", StatusMiss)
	expectGet(t, c2, "b", "B", StatusHit)
	if v, st := c2.Get([]byte("big")); st != StatusHit || !bytes.Equal(v, big) {
		t.Fatalf("big: %v, %d bytes", st, len(v))
	}
	if c2.written.Load() != c.written.Load() || c2.gens.seq.Load() != 1 {
		t.Errorf("restored written %d seq %d", c2.written.Load(), c2.gens.seq.Load())
	}
	// Generations go on from where they were: a bump after the restart
	// invalidates entries saved before it.
	c2.Invalidate("tb")
	expectGet(t, c2, "b", "", StatusMiss)
	expectGet(t, c2, "big", "", StatusMiss)
}

// TestConcurrentSaves: Saves of one cache to one directory, made at once
// and while the cache serves, run one after the other (writeFileAtomic's
// fixed temporary names rely on that, as does the data directory's
// number): the directory holds the last one, which loads.
func TestConcurrentSaves(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"ta"}, n.fn("A", 0, nil))
	const savers, each = 4, 3
	var wg sync.WaitGroup
	errs := make(chan error, savers*each)
	for range savers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- c.Save(dir)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			if _, st := c.Get([]byte("a")); st != StatusHit {
				errs <- fmt.Errorf("read %d during the saves: %v", i, st)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if names := dirNames(t, dir); strings.Join(names, " ") != fmt.Sprintf("clean data.%d generations", savers*each) {
		t.Fatalf("saved files: %v", names)
	}
	_ = c.Close()
	expectGet(t, loadTestCache(t, dir, clk), "a", "A", StatusHit)
}

func TestLoadEmptyOrMissing(t *testing.T) {
	clk := newFakeClock()
	for _, dir := range []string{filepath.Join(t.TempDir(), "absent"), t.TempDir()} {
		c := loadTestCache(t, dir, clk)
		expectGet(t, c, "a", "", StatusMiss)
	}
}

// Data without its generations file is never loaded.
func TestLoadDataWithoutGenerations(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"t"}, n.fn("A", 0, nil))
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, genFileName)); err != nil {
		t.Fatal(err)
	}
	c2 := loadTestCache(t, dir, clk)
	expectGet(t, c2, "a", "", StatusMiss)
}

func TestLoadCorruptGenerations(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c := newTestCache(t, clk)
	c.Invalidate("t")
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, genFileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	cases := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)-1],
		"zeroed":    make([]byte, len(good)),
		"flipped":   flip(20),
		"checksum":  flip(len(good) - 1),
		// A header cut before its record count, with a checksum that
		// matches what is left.
		"short header": binary.LittleEndian.AppendUint64(bytes.Clone(good[:genFileHeaderLen-8]), xxhash.Sum64(good[:genFileHeaderLen-8])),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(dir, testOptions(clk))
			var ce *CorruptionError
			if !errors.As(err, &ce) || c != nil {
				t.Fatalf("Load = %v, %v; want a *CorruptionError", c, err)
			}
		})
	}
}

// Damaged data files give an empty cache, never wrong values.
func TestLoadCorruptData(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", nil, n.fn("A", 0, nil))
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.1")
	for _, name := range dirNames(t, data) {
		if err := os.WriteFile(filepath.Join(data, name), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c2 := loadTestCache(t, dir, clk)
	expectGet(t, c2, "a", "", StatusMiss)
}

func TestGenFileRoundTrip(t *testing.T) {
	st := genFile{
		genState: genState{seq: 10, floor: 3, tags: []genFileRecord{
			{hash: 1, genRecord: genRecord{gen: 4, at: 100}},
			{hash: 2, genRecord: genRecord{gen: 10, at: -5}},
		}},
		written: 12345,
		saveSeq: 7,
	}
	got, err := decodeGenFile(appendGenFile(nil, &st))
	if err != nil {
		t.Fatal(err)
	}
	if got.seq != st.seq || got.floor != st.floor || got.written != st.written ||
		got.saveSeq != st.saveSeq || len(got.tags) != 2 || got.tags[1] != st.tags[1] {
		t.Fatalf("round trip: %+v", got)
	}
}

func FuzzDecodeGenFile(f *testing.F) {
	f.Add(appendGenFile(nil, &genFile{genState: genState{seq: 2, tags: []genFileRecord{{hash: 9, genRecord: genRecord{gen: 2}}}}}))
	f.Add([]byte(genFileMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeGenFile(b)
		if err != nil {
			return
		}
		if re := appendGenFile(nil, &st); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestLoadTrustsOnlyCleanSave: a saved cache is loaded once. After a
// restart that did not end in Save (a crash: writes and deletes made since
// the load may have bumped tags the saved generations do not hold), Load
// starts empty instead of serving the old entries.
func TestLoadTrustsOnlyCleanSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	clk := newFakeClock()
	c := newTestCache(t, clk)
	var n counter
	mustGet(t, c, "a", []string{"ta"}, n.fn("A", 0, nil))
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	c2, err := Load(dir, testOptions(clk))
	if err != nil {
		t.Fatal(err)
	}
	expectGet(t, c2, "a", "A", StatusHit) // a clean stop: trusted
	c2.Invalidate("ta")                   // a write this run acknowledged...
	// ...then the process is killed: no Save, no Close.
	c3 := loadTestCache(t, dir, clk)
	expectGet(t, c3, "a", "", StatusMiss)
	_ = c2.Close()

	// A clean stop marks the state loadable again.
	mustGet(t, c3, "b", []string{"tb"}, n.fn("B", 0, nil))
	if err := c3.Save(dir); err != nil {
		t.Fatal(err)
	}
	// TTLs are wall-clock times and run on across the restart.
	clk.Advance(time.Minute)
	c4 := loadTestCache(t, dir, clk)
	expectGet(t, c4, "b", "B", StatusStale)
}

// TestL2FileRoundTrip: the l2 file (which Redis the saved generations are
// shared with, and the holes of provisional numbers whose entries must
// stay misses) reads back as written, and any damage reads as no file,
// which makes the loaded entries drop at the first resync instead of being
// trusted.
func TestL2FileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, l2FileName)
	read := func(b []byte) *savedL2 {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return readL2File(path)
	}
	for _, want := range []savedL2{
		{prefix: "strata:", epoch: "e1", runID: "r1"},
		{prefix: "", epoch: "0a", runID: "x"},
		{prefix: "a b\n\"c", epoch: "e", runID: "r", holes: []seqHole{{0, 1}, {5, 9}, {10, 1 << 63}}},
	} {
		got := read(appendL2File(nil, &want))
		if got == nil || got.prefix != want.prefix || got.epoch != want.epoch ||
			got.runID != want.runID || !slices.Equal(got.holes, want.holes) {
			t.Fatalf("round trip of %+v: %+v", want, got)
		}
	}
	if readL2File(filepath.Join(dir, "absent")) != nil {
		t.Fatal("a missing file read as saved")
	}
	good := string(appendL2File(nil, &savedL2{prefix: "p", epoch: "e", runID: "r", holes: []seqHole{{1, 2}}}))
	for name, b := range map[string]string{
		"empty":           "",
		"magic only":      l2FileMagic + "\n",
		"three lines":     l2FileMagic + "\n\"p\"\ne\n",
		"other magic":     strings.Replace(good, l2FileMagic, "strata-cache-l2 1", 1),
		"unquoted prefix": strings.Replace(good, "\"p\"", "p", 1),
		"no epoch":        l2FileMagic + "\n\"p\"\n\nr\n",
		"no run id":       l2FileMagic + "\n\"p\"\ne\n\n",
		"bad hole":        good + "hole 1\n",
		"not a hole":      good + "gap 1 2\n",
		"empty hole":      good + "hole 3 3\n",
		"reversed hole":   good + "hole 4 3\n",
		"negative hole":   good + "hole -1 3\n",
	} {
		if got := read([]byte(b)); got != nil {
			t.Errorf("%s: read as %+v, want nil", name, got)
		}
	}
	// Blank lines between holes are skipped.
	if got := read([]byte(good + "\nhole 7 8\n\n")); got == nil || !slices.Equal(got.holes, []seqHole{{1, 2}, {7, 8}}) {
		t.Fatalf("blank lines: %+v", got)
	}
}
