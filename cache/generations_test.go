package cache

import "testing"

func newGens() *generations {
	g := &generations{}
	g.init()
	return g
}

// TestDroppedAtCoversEveryDroppedRecord: whatever removes records (a
// floor, a reset, a replace) first raises droppedAt to the latest bump
// time among them, the record at the floor itself included: the partner
// rule (l2_partner.go) takes a tag without a record to have been bumped
// as late as that.
func TestDroppedAtCoversEveryDroppedRecord(t *testing.T) {
	g := newGens()
	g.apply(1, 3, 500)
	g.apply(2, 5, 1000) // the newest bump, at exactly the floor below
	g.apply(3, 6, 2000) // above it: kept
	g.applyFloor(5)
	if got := g.droppedAt.Load(); got != 1000 {
		t.Fatalf("droppedAt after a floor at 5 = %d, want 1000", got)
	}
	if g.count.Load() != 1 || g.record(3).gen != 6 || g.record(2).gen != 0 {
		t.Fatalf("after a floor at 5: count %d, records 2 %+v, 3 %+v", g.count.Load(), g.record(2), g.record(3))
	}
	g.applyFloor(4) // lower: nothing happens
	if g.floor.Load() != 5 || g.count.Load() != 1 {
		t.Fatalf("a lower floor changed floor %d or count %d", g.floor.Load(), g.count.Load())
	}

	g.apply(4, 7, 3000)
	g.reset()
	if got := g.droppedAt.Load(); got != 3000 || g.count.Load() != 0 {
		t.Fatalf("after a reset: droppedAt %d count %d", got, g.count.Load())
	}

	g.apply(5, 20, 4000)
	g.replace(30, 10, map[uint64]uint64{6: 25}, 5000)
	if got := g.droppedAt.Load(); got != 4000 {
		t.Fatalf("after a replace: droppedAt %d, want 4000", got)
	}
	if g.count.Load() != 1 || g.record(6) != (genRecord{gen: 25, at: 5000}) || g.seq.Load() != 30 || g.floor.Load() != 10 {
		t.Fatalf("after a replace: count %d record %+v seq %d floor %d", g.count.Load(), g.record(6), g.seq.Load(), g.floor.Load())
	}
	g.applyFloor(25)
	if got := g.droppedAt.Load(); got != 5000 {
		t.Fatalf("after dropping the replaced record: droppedAt %d, want 5000", got)
	}
	// droppedAt never goes back.
	g.apply(7, 31, 100)
	g.applyFloor(31)
	if got := g.droppedAt.Load(); got != 5000 {
		t.Fatalf("droppedAt went back to %d", got)
	}
}

// TestApplyKeepsFirstBumpTime: a generation applied twice (the reply of a
// bump and its published message) keeps the time of the bump that set
// it; a lower one changes nothing; a higher one replaces it. seq rises to
// the highest applied.
func TestApplyKeepsFirstBumpTime(t *testing.T) {
	g := newGens()
	g.apply(1, 5, 100)
	g.apply(1, 5, 200)
	if r := g.record(1); r != (genRecord{gen: 5, at: 100}) {
		t.Fatalf("applied twice: %+v", r)
	}
	g.apply(1, 4, 300)
	if r := g.record(1); r != (genRecord{gen: 5, at: 100}) || g.seq.Load() != 5 {
		t.Fatalf("a lower generation applied: %+v, seq %d", r, g.seq.Load())
	}
	g.apply(1, 8, 400)
	if r := g.record(1); r != (genRecord{gen: 8, at: 400}) || g.seq.Load() != 8 || g.count.Load() != 1 {
		t.Fatalf("a higher generation applied: %+v, seq %d, count %d", r, g.seq.Load(), g.count.Load())
	}
}
