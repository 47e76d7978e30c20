package cache

// Read your writes across instances fed independently.
//
// The instances sharing an L2 tier are fed the same writes, but not at the
// same moment: each receives a write when its own queue delivers it.
//
//   - Behind: an instance A that acknowledged a late write W bumped W's
//     tags; an instance B that has not received W yet may compute an
//     extent of those tags after A's bump, without W, and store it in L2.
//     It is valid by the generations (its snapshot is above A's bump)
//     until B receives W and bumps the tags itself. A serving it would
//     answer without its own acknowledged write.
//   - Ahead: B received W first, bumped, and computed an extent with W;
//     A, which has not received W, serving it would answer with a write
//     its own engine does not have.
//
// So no instance takes from L2 an entry one of whose tags was bumped, by
// any instance, less than PartnerLag ago (by the time this instance
// applied the bump: when it made it, heard of it, or re-read it at a
// resync). Within PartnerLag every instance has received the write (the
// assumption the option names) and bumped the tag, which invalidates
// every entry computed without the write, and has the write, so an entry
// with it equals its own answer. Entries promoted into L1 need no such
// rule: one promoted before a bump is invalidated by it, one promoted
// later was taken from L2 under this rule.
//
// A new epoch (the shared state was lost) has no record of the bumps made
// before it: an instance that adopts one in place of the epoch it knew
// takes nothing from L2 for PartnerLag.
//
// Nor does the mirror keep a record below the floor: a floor raised (a
// Reset, a prune, an instance adopting an epoch above its numbers, each
// published to every instance) drops the records at or below it, and with
// them the times of bumps that may be recent. Entries computed after it
// are valid by the generations, so the rule cannot rest on the records
// alone: an instance takes nothing from L2 for PartnerLag after the latest
// bump whose record it dropped (generations.droppedAt). Without that, an
// instance that had just acknowledged a write took from L2 the extent its
// partner computed without it right after a floor went up
// (TestL2PartnerLagSurvivesFloor).

// partnerLag returns how long after a bump of a tag its L2 entries are
// refused; 0 means never.
func (l *l2) partnerLag() int64 {
	if l.opts.PartnerLag < 0 {
		return 0
	}
	return int64(l.opts.PartnerLag)
}

// partnerMayServe reports whether an L2 entry e may be served at now: no
// tag of it was bumped less than PartnerLag ago.
func (l *l2) partnerMayServe(e *entry, now int64) bool {
	lag := l.partnerLag()
	if lag == 0 {
		return true
	}
	if now < l.refuseAllUntil.Load() {
		return false
	}
	for i := range e.numTags() {
		if r := l.c.gens.record(e.tag(i)); r.gen > 0 && now < r.at+lag {
			return false
		}
	}
	// A tag whose record was dropped (a floor raised by a Reset, a prune
	// or an instance adopting an epoch; a resync) may have been bumped as
	// late as droppedAt: read after the records (generations.droppedAt).
	return now >= l.c.gens.droppedAt.Load()+lag
}
