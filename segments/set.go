package segments

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// Set is the live collection of segments in one directory: what readers
// see, what a flush publishes into and what compaction and retention
// replace. Readers Acquire the segments they need; a segment that is
// replaced or dropped leaves the set at once and is deleted from disk once
// its last reader has released it.
type Set struct {
	logger *slog.Logger
	dir    string
	cache  *PageCache // pages of the compressed segments

	mtx        sync.RWMutex           // mtx guards segs, metas and tombstones.
	segs       []*Segment             // sorted by MinTime, then ID
	metas      []Meta                 // segs' metas, made anew (never modified) when segs changes
	tombstones map[string][]Tombstone // by segment ID

	removals sync.WaitGroup // deletions waiting for readers

	seqMtx sync.Mutex // seqMtx guards seq.
	seq    uint64     // the last write sequence number given out or seen
}

// OpenSet opens (creating dir if needed) every segment in dir; see OpenAll
// for what happens to damaged and unfinished ones. A segment whose data
// another segment also holds (a compaction that finished writing but not
// removing its inputs) is removed.
func OpenSet(logger *slog.Logger, dir string) (*Set, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create segments dir: %w", err)
	}
	cache := NewPageCache(DefaultPageCacheSize)
	segs, err := OpenAllWithCache(logger, dir, cache)
	if err != nil {
		return nil, err
	}
	tombs, err := loadTombstones(dir)
	if errors.Is(err, errTombstonesDamaged) {
		// Quarantined like a damaged segment: the data deleted through it
		// shows again until it is deleted again, but the server starts.
		to, qerr := quarantine(dir, tombstonesFile)
		if qerr != nil {
			err = fmt.Errorf("quarantine %s: %w (after: %w)", tombstonesFile, qerr, err)
		} else {
			logger.Error("tombstones file is damaged: moved it aside and started without tombstones; deleted data may show again until deleted again",
				"file", to, "err", err)
			tombs, err = map[string][]Tombstone{}, nil
		}
	}
	if err != nil {
		for _, seg := range segs {
			_ = seg.Close()
		}
		return nil, err
	}
	seq, err := loadSeq(dir)
	if err != nil {
		for _, seg := range segs {
			_ = seg.Close()
		}
		return nil, err
	}
	s := &Set{logger: logger, dir: dir, cache: cache, tombstones: tombs, seq: seq}
	for _, seg := range segs {
		s.seq = max(s.seq, seg.Meta().Seq)
	}
	// Only a segment of the same resolution replaces its sources (rollups
	// list what they were built from with a "<resolution>:" prefix, which
	// never equals an ID).
	covered := map[string]bool{}
	for _, seg := range segs {
		for _, src := range seg.Meta().Compaction.Sources {
			if src != seg.Meta().ID {
				covered[strconv.FormatInt(seg.Meta().Resolution, 10)+"/"+src] = true
			}
		}
	}
	for _, seg := range segs {
		if covered[strconv.FormatInt(seg.Meta().Resolution, 10)+"/"+seg.Meta().ID] {
			logger.Info("removing segment left behind by a finished compaction", "segment", seg.Meta().ID)
			if err := Remove(seg); err != nil {
				return nil, err
			}
			continue
		}
		s.segs = append(s.segs, seg)
	}
	s.sortLocked()
	pruned := false
	for id := range s.tombstones {
		if !slices.ContainsFunc(s.segs, func(seg *Segment) bool { return seg.meta.ID == id }) {
			delete(s.tombstones, id)
			pruned = true
		}
	}
	if pruned {
		if err := s.saveTombstonesLocked(); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("save tombstones: %w", err)
		}
	}
	return s, nil
}

// sortLocked sorts segs after a change, and makes metas anew.
func (s *Set) sortLocked() {
	slices.SortFunc(s.segs, func(a, b *Segment) int {
		if c := cmp.Compare(a.meta.MinTime, b.meta.MinTime); c != 0 {
			return c
		}
		return cmp.Compare(a.meta.ID, b.meta.ID)
	})
	s.metas = make([]Meta, len(s.segs))
	for i, seg := range s.segs {
		s.metas[i] = seg.meta
	}
}

// Dir returns the directory the set's segments live in.
func (s *Set) Dir() string { return s.dir }

// PageCache returns the cache, shared by the set's segments, of the
// decompressed pages of compressed segments; register it to export its
// metrics.
func (s *Set) PageCache() *PageCache { return s.cache }

// Publish opens the segments with the given metas, already written under
// Dir, and adds them to the set.
func (s *Set) Publish(metas []Meta) error {
	opened, err := s.open(metas)
	if err != nil {
		return err
	}
	s.mtx.Lock()
	s.segs = append(s.segs, opened...)
	s.sortLocked()
	s.mtx.Unlock()
	s.seqMtx.Lock()
	for _, seg := range opened {
		s.seq = max(s.seq, seg.meta.Seq)
	}
	s.seqMtx.Unlock()
	return nil
}

func (s *Set) open(metas []Meta) ([]*Segment, error) {
	var opened []*Segment
	for _, m := range metas {
		seg, err := OpenWithCache(filepath.Join(s.dir, m.ID), s.cache)
		if err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
			return nil, fmt.Errorf("open new segment %s: %w", m.ID, err)
		}
		opened = append(opened, seg)
	}
	return opened, nil
}

// Acquire returns the segments whose time range overlaps [mint, maxt], each
// acquired for reading, in the order their data was written in
// (WriteOrder), and a function that releases them all.
func (s *Set) Acquire(mint, maxt int64) ([]*Segment, func()) {
	segs, _, release := s.AcquireWithTombstones(mint, maxt)
	return segs, release
}

// TombstoneView is the tombstones of some segments at one moment, by
// segment ID. It must not be modified.
type TombstoneView map[string][]Tombstone

// AcquireWithTombstones is Acquire that also returns the tombstones of the
// acquired segments, taken in the same step: a compaction that replaces a
// segment drops its tombstones from the set (its output holds the data
// without what they hid), so a reader of the replaced segment must not
// look them up afterwards.
func (s *Set) AcquireWithTombstones(mint, maxt int64) ([]*Segment, TombstoneView, func()) {
	s.mtx.RLock()
	var out []*Segment
	tombs := TombstoneView{}
	for _, seg := range s.segs {
		if seg.meta.MinTime <= maxt && seg.meta.MaxTime >= mint {
			if seg.Acquire() == nil {
				out = append(out, seg)
				if ts := s.tombstones[seg.meta.ID]; len(ts) > 0 {
					// Tombstones are only appended to: the slice's
					// length fixes what this reader sees.
					tombs[seg.meta.ID] = ts[:len(ts):len(ts)]
				}
			}
		}
	}
	s.mtx.RUnlock()
	slices.SortFunc(out, func(a, b *Segment) int { return WriteOrder(a.meta, b.meta) })
	return out, tombs, func() {
		for _, seg := range out {
			seg.Release()
		}
	}
}

// Segments returns the metas and sizes of the segments in the set, in
// MinTime order.
func (s *Set) Segments() []Info {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	out := make([]Info, len(s.segs))
	for i, seg := range s.segs {
		out[i] = Info{Meta: seg.meta, Size: seg.size}
	}
	return out
}

// Metas returns the metas of the set's segments, in Segments' order,
// without copying them: the slice is shared and must not be modified. A
// change to the set makes a new one; a slice returned before stays as it
// was.
func (s *Set) Metas() []Meta {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	return s.metas
}

// Info is a segment's meta and size on disk.
type Info struct {
	Meta Meta
	Size int64
}

// Replace opens the segments of metas (already written under Dir), and in
// one step adds them and takes the segments with IDs old out of the set,
// with their tombstones.
// The old segments are deleted once their readers are done. Unknown IDs in
// old are an error, and nothing changes.
func (s *Set) Replace(old []string, metas []Meta) error {
	opened, err := s.open(metas)
	if err != nil {
		return err
	}
	s.mtx.Lock()
	var removed []*Segment
	for _, id := range old {
		i := slices.IndexFunc(s.segs, func(seg *Segment) bool { return seg.meta.ID == id })
		if i < 0 {
			s.mtx.Unlock()
			for _, o := range opened {
				_ = o.Close()
			}
			return fmt.Errorf("replace segments: %s is not in the set", id)
		}
		removed = append(removed, s.segs[i])
		s.segs = slices.Delete(s.segs, i, i+1)
	}
	s.segs = append(s.segs, opened...)
	s.sortLocked()
	dropped := false
	for _, seg := range removed {
		if _, ok := s.tombstones[seg.meta.ID]; ok {
			delete(s.tombstones, seg.meta.ID)
			dropped = true
		}
	}
	var saveErr error
	if dropped {
		saveErr = s.saveTombstonesLocked()
	}
	s.mtx.Unlock()
	if saveErr != nil {
		// The replaced segments are gone from the set; stale entries in the
		// file name IDs that no longer exist and are ignored at load.
		s.logger.Warn("save tombstones after replace", "err", saveErr)
	}
	for _, seg := range removed {
		s.removals.Add(1)
		go func() {
			defer s.removals.Done()
			if err := Remove(seg); err != nil {
				s.logger.Error("delete replaced segment", "segment", seg.meta.ID, "err", err)
			}
		}()
	}
	return nil
}

// Quarantine takes the segment with ID id out of the set, with its
// tombstones, after a read found it damaged (cause), and once its readers
// are done moves its directory to <dir>/quarantine/<id>, logging an error.
// Queries that start afterwards no longer see it. An ID not in the set
// (already quarantined, or replaced) is ignored.
func (s *Set) Quarantine(id string, cause error) {
	s.mtx.Lock()
	i := slices.IndexFunc(s.segs, func(seg *Segment) bool { return seg.meta.ID == id })
	if i < 0 {
		s.mtx.Unlock()
		return
	}
	seg := s.segs[i]
	s.segs = slices.Delete(s.segs, i, i+1)
	s.sortLocked()
	var saveErr error
	if _, ok := s.tombstones[id]; ok {
		delete(s.tombstones, id)
		saveErr = s.saveTombstonesLocked()
	}
	s.mtx.Unlock()
	if saveErr != nil {
		s.logger.Warn("save tombstones after quarantine", "err", saveErr)
	}
	s.removals.Add(1)
	go func() {
		defer s.removals.Done()
		// Close waits for the queries holding the segment.
		err := seg.Close()
		to := ""
		if err == nil {
			to, err = quarantine(s.dir, id)
		}
		if err != nil {
			s.logger.Error("quarantine damaged segment", "segment", id, "cause", cause, "err", err)
			return
		}
		s.logger.Error("damaged segment found by a read: moved out of the set", "segment", id, "err", cause, "moved_to", to)
	}()
}

// Close waits for pending deletions and closes every segment.
func (s *Set) Close() error {
	s.removals.Wait()
	s.mtx.Lock()
	defer s.mtx.Unlock()
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.Close())
	}
	s.segs = nil
	return errors.Join(errs...)
}
