package cache

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// TestParseState: the reply of the state-reading script gives seq, floor
// and the tags above floor (the "~" sentinel left out); any malformed
// reply is an error, never a partial state.
func TestParseState(t *testing.T) {
	seq, floor, tags, err := parseState([]any{"9", "3", []any{"~", "0", "a", "2", "b", "3", "c", "4", "ff", "9"}})
	if err != nil || seq != 9 || floor != 3 || !maps.Equal(tags, map[uint64]uint64{0xc: 4, 0xff: 9}) {
		t.Fatalf("parseState = %d %d %v %v", seq, floor, tags, err)
	}
	if _, floor, tags, err := parseState([]any{"5", "5", []any{"~", "0"}}); err != nil || floor != 5 || len(tags) != 0 {
		t.Fatalf("floor at seq, no tags: %d %v %v", floor, tags, err)
	}
	for name, vals := range map[string][]any{
		"two parts":      {"1", "0"},
		"four parts":     {"1", "0", []any{}, "x"},
		"bad seq":        {"x", "0", []any{}},
		"missing seq":    {nil, "0", []any{}},
		"bad floor":      {"1", "-1", []any{}},
		"odd tag list":   {"1", "0", []any{"a"}},
		"bad tag hash":   {"9", "0", []any{"zz", "1"}},
		"bad generation": {"9", "0", []any{"a", "1.5"}},
		"floor above":    {"1", "2", []any{}},
	} {
		if _, _, _, err := parseState(vals); err == nil {
			t.Errorf("%s: parseState(%v) succeeded", name, vals)
		}
	}
}

// unsyncedL2 returns a cache whose L2 tier points at a port nothing
// listens on, with the keys of epoch "E": what it does with messages can
// be watched without a Redis.
func unsyncedL2(t *testing.T) *Cache {
	t.Helper()
	c := newL2Cache(t, "redis://127.0.0.1:"+strconv.Itoa(freePort(t)), testPrefix())
	c.l2.keys.Store(c.l2.keysFor("E"))
	return c
}

// TestApplyMessage: published bumps, floors and counter raises of the
// current epoch go into the mirror and count as heard; those of another
// epoch are ignored; the start of another epoch, and anything malformed,
// end the session.
func TestApplyMessage(t *testing.T) {
	c := unsyncedL2(t)
	l, g := c.l2, &c.gens
	apply := func(msg string) {
		t.Helper()
		if err := l.applyMessage(msg); err != nil {
			t.Fatalf("applyMessage(%q): %v", msg, err)
		}
	}
	gen := func(h uint64) uint64 {
		r, _ := g.shard(h).m[h]
		return r.gen
	}
	apply("b E a 4 b 6")
	if gen(0xa) != 4 || gen(0xb) != 6 || g.seq.Load() != 6 || l.sync.heard.Load() != 6 {
		t.Fatalf("after a bump: a %d b %d seq %d heard %d", gen(0xa), gen(0xb), g.seq.Load(), l.sync.heard.Load())
	}
	apply("b E c 8")
	apply("b F a 100") // another epoch's: ignored
	apply("f F 100")
	apply("s F 100")
	apply("e E") // the current epoch announced again
	if gen(0xa) != 4 || gen(0xc) != 8 || g.seq.Load() != 8 || l.sync.heard.Load() != 8 {
		t.Fatalf("after another epoch's messages: a %d seq %d heard %d", gen(0xa), g.seq.Load(), l.sync.heard.Load())
	}
	apply("s E 10") // the counter skipped numbers
	if g.seq.Load() != 10 || l.sync.heard.Load() != 10 || g.floor.Load() != 0 {
		t.Fatalf("after a raise: seq %d heard %d floor %d", g.seq.Load(), l.sync.heard.Load(), g.floor.Load())
	}
	apply("f E 6") // drops a and b, keeps c
	if g.floor.Load() != 6 || gen(0xa) != 0 || gen(0xb) != 0 || gen(0xc) != 8 || g.seq.Load() != 10 || l.sync.heard.Load() != 10 {
		t.Fatalf("after a floor: floor %d a %d b %d c %d seq %d", g.floor.Load(), gen(0xa), gen(0xb), gen(0xc), g.seq.Load())
	}
	apply("f E 12")
	if g.floor.Load() != 12 || g.seq.Load() != 12 || l.sync.heard.Load() != 12 || gen(0xc) != 0 {
		t.Fatalf("after a floor above seq: floor %d seq %d heard %d", g.floor.Load(), g.seq.Load(), l.sync.heard.Load())
	}
	if err := l.applyMessage("e F"); !errors.Is(err, errResync) {
		t.Fatalf("a new epoch: %v, want errResync", err)
	}
	for _, bad := range []string{"", "b", "b E a", "b E a 1 b", "b E zz 1", "b E a x", "f E", "f E x", "f E 1 2", "s E", "s E -1", "x E 1"} {
		if err := l.applyMessage(bad); err == nil || errors.Is(err, errResync) {
			t.Errorf("applyMessage(%q) = %v, want a bad message error", bad, err)
		}
	}
	if g.seq.Load() != 12 {
		t.Fatalf("bad messages changed seq to %d", g.seq.Load())
	}
}

// TestHoles: a hole (lo, hi] holds the snapshots above lo up to hi; holes
// wholly below the floor are dropped; beyond maxHoles the oldest merge, so
// no provisional number ever leaves every hole.
func TestHoles(t *testing.T) {
	c := unsyncedL2(t)
	l := c.l2
	holes := func() []seqHole { return slices.Clone(*l.sync.holes.Load()) }
	l.addHole(10, 20, 0)
	for seq, want := range map[uint64]bool{10: false, 11: true, 20: true, 21: false} {
		if l.inHole(seq) != want {
			t.Errorf("inHole(%d) = %v", seq, !want)
		}
	}
	l.addHole(30, 30, 0) // empty: nothing recorded
	if h := holes(); !slices.Equal(h, []seqHole{{10, 20}}) {
		t.Fatalf("holes %v", h)
	}
	l.addHole(30, 40, 20) // floor 20: (10, 20] still holds 20
	if h := holes(); !slices.Equal(h, []seqHole{{10, 20}, {30, 40}}) {
		t.Fatalf("holes %v", h)
	}
	l.addHole(0, 0, 21) // floor 21: (10, 20] goes
	if h := holes(); !slices.Equal(h, []seqHole{{30, 40}}) {
		t.Fatalf("holes %v", h)
	}
	for i := range uint64(maxHoles) {
		l.addHole(100+10*i, 105+10*i, 0)
	}
	h := holes()
	if len(h) != maxHoles || h[0] != (seqHole{30, 105}) || h[1] != (seqHole{110, 115}) {
		t.Fatalf("holes past maxHoles: %v", h)
	}
	for _, seq := range []uint64{31, 40, 41, 105} {
		if !l.inHole(seq) {
			t.Errorf("%d left every hole after the merge", seq)
		}
	}
}

// TestL2JudgeFuture: an L2 entry that is not fresh here is "from the
// future" (l2Future: the lock poll waits for the mirror to catch up
// instead of computing) only if its snapshot is above the mirror's
// sequence, it has not expired and it was not created past the allowed
// clock skew; anything else not fresh is unusable.
func TestL2JudgeFuture(t *testing.T) {
	c := unsyncedL2(t)
	c.gens.seq.Store(10)
	l := c.l2
	out := l.sync.outageStart.Load() // unsynced: entries created before it are misses
	now := out + int64(time.Second)
	key := []byte("k")
	enc := func(seq uint64, created, expires int64) []byte {
		m := entryMeta{created: created, expires: expires, graceEnd: expires + int64(time.Minute), seq: seq}
		b := appendEntryHeader(nil, &m, 0, len(key))
		b = append(append(b, key...), 'v')
		sealEntry(b)
		return snappy.Encode(nil, b)
	}
	for _, tc := range []struct {
		name             string
		seq              uint64
		created, expires int64
		want             l2Result
	}{
		{"fresh", 10, now, now + 1, l2Found},
		{"ahead", 11, now, now + 1, l2Future},
		{"ahead, created at the skew's edge", 11, now + maxClockSkew, now + maxClockSkew + 1, l2Future},
		{"ahead, created past the skew", 11, now + maxClockSkew + 1, now + maxClockSkew + 2, l2Unusable},
		{"ahead, expired just now", 11, now - 1, now, l2Unusable},
		{"not ahead, created before the outage", 10, out - 1, now + 1, l2Unusable},
		{"behind, created before the outage", 9, out - 1, now + 1, l2Unusable},
	} {
		if _, _, got := l.judge(enc(tc.seq, tc.created, tc.expires), key, now); got != tc.want {
			t.Errorf("%s: judge = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestLoadKeepsHoles: the holes of provisional numbers saved with a cache
// are loaded with it: entries whose snapshot lies in one stay misses.
func TestLoadKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	plain := newTestCache(t, newFakeClock())
	if err := plain.Save(dir); err != nil {
		t.Fatal(err)
	}
	_ = plain.Close()
	o := l2TestOptions("redis://127.0.0.1:"+strconv.Itoa(freePort(t)), testPrefix())
	saved := savedL2{prefix: o.L2.Prefix, epoch: "e", runID: "r", holes: []seqHole{{5, 9}}}
	if err := os.WriteFile(filepath.Join(dir, l2FileName), appendL2File(nil, &saved), 0o644); err != nil {
		t.Fatal(err)
	}
	c := loadL2(t, dir, o)
	for seq, want := range map[uint64]bool{5: false, 6: true, 9: true, 10: false} {
		if got := c.l2.inHole(seq); got != want {
			t.Errorf("loaded cache: inHole(%d) = %v, want %v", seq, got, want)
		}
	}
}
