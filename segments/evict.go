package segments

import "slices"

// Evict takes the segment with ID id out of the set and deletes its
// directory once its readers are done, as Replace does, unless the segment
// has tombstones (they would leave with it) or is not in the set. It
// reports whether it took the segment out. The object storage tier evicts
// local copies of segments it has verified in the bucket.
func (s *Set) Evict(id string) bool {
	s.mtx.Lock()
	i := slices.IndexFunc(s.segs, func(seg *Segment) bool { return seg.meta.ID == id })
	if i < 0 || len(s.tombstones[id]) > 0 {
		s.mtx.Unlock()
		return false
	}
	seg := s.segs[i]
	s.segs = slices.Delete(s.segs, i, i+1)
	s.sortLocked() // makes metas anew: Metas must not list it
	s.mtx.Unlock()
	s.removals.Add(1)
	go func() {
		defer s.removals.Done()
		if err := Remove(seg); err != nil {
			s.logger.Error("delete evicted segment", "segment", id, "err", err)
		}
	}()
	return true
}
