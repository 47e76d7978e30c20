// Package metadata keeps the metadata (type, unit, help) that writes
// carried for metric families, bounded, for /api/v1/metadata. It owns the
// in-memory store only: the head logs every change in the write-ahead log
// and replays it, and re-logs the whole store after each cut, so the store
// survives restarts. It must not read or write files itself.
package metadata

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/strata-tsdb/strata/ingest"
)

// MaxPerFamily is how many distinct metadata one family keeps (senders may
// disagree, as Prometheus' targets may); a new one beyond it replaces the
// oldest.
const MaxPerFamily = 8

// MaxHelpBytes bounds a help text; a longer one is cut (at a rune boundary).
const MaxHelpBytes = 4096

// Store holds metadata per metric family. It is safe for concurrent use.
type Store struct {
	maxFamilies int

	mtx      sync.RWMutex                 // mtx guards families.
	families map[string][]ingest.Metadata // distinct entries, oldest first

	dropped atomic.Int64 // entries refused because maxFamilies was reached
}

// New returns a store of at most maxFamilies families (zero: it keeps
// nothing).
func New(maxFamilies int) *Store {
	return &Store{maxFamilies: maxFamilies, families: map[string][]ingest.Metadata{}}
}

// Dropped returns how many entries were refused because the store was full.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// Len returns the number of families held.
func (s *Store) Len() int {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	return len(s.families)
}

// Changes appends to dst the entries of in that Add would change the store
// with (a family it does not hold, or metadata the family does not have
// yet), and returns it: what must be logged before Add. Entries that would
// be dropped for the family bound are left out and counted as dropped.
func (s *Store) Changes(in []ingest.FamilyMetadata, dst []ingest.FamilyMetadata) []ingest.FamilyMetadata {
	if len(in) == 0 || s.maxFamilies <= 0 {
		return dst
	}
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	newFamilies := 0
	for _, fm := range in {
		fm.Metadata = normalize(fm.Metadata)
		have, ok := s.families[fm.Family]
		switch {
		case ok && slices.Contains(have, fm.Metadata):
			continue
		case !ok && len(s.families)+newFamilies >= s.maxFamilies:
			s.dropped.Add(1)
			continue
		case !ok:
			newFamilies++
		}
		dst = append(dst, fm)
	}
	return dst
}

// Add applies entries (as Changes returned them, or as replay reads them).
// A family past the bound is dropped.
func (s *Store) Add(in []ingest.FamilyMetadata) {
	if len(in) == 0 || s.maxFamilies <= 0 {
		return
	}
	s.mtx.Lock()
	defer s.mtx.Unlock()
	for _, fm := range in {
		md := normalize(fm.Metadata)
		have, ok := s.families[fm.Family]
		if !ok && len(s.families) >= s.maxFamilies {
			continue
		}
		if slices.Contains(have, md) {
			continue
		}
		if len(have) >= MaxPerFamily {
			have = slices.Delete(have, 0, 1)
		}
		s.families[fm.Family] = append(have, md)
	}
}

// normalize gives the empty type its name and cuts a long help text.
func normalize(md ingest.Metadata) ingest.Metadata {
	if md.Type == "" {
		md.Type = "unknown"
	}
	if len(md.Help) > MaxHelpBytes {
		md.Help = strings.ToValidUTF8(md.Help[:MaxHelpBytes], "")
	}
	return md
}

// Query returns the metadata of every family (or of family metric only
// when it is not empty), as Prometheus' /api/v1/metadata: at most limit
// families when limit >= 0, at most limitPerMetric entries each when it is
// above 0. Families come sorted by name, each one's entries newest first.
func (s *Store) Query(metric string, limit, limitPerMetric int) []ingest.FamilyMetadata {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	var names []string
	if metric != "" {
		if _, ok := s.families[metric]; ok {
			names = []string{metric}
		}
	} else {
		names = make([]string, 0, len(s.families))
		for n := range s.families {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	var out []ingest.FamilyMetadata
	for i, n := range names {
		if limit >= 0 && i >= limit {
			break
		}
		have := s.families[n]
		for j := len(have) - 1; j >= 0; j-- {
			if limitPerMetric > 0 && len(have)-1-j >= limitPerMetric {
				break
			}
			out = append(out, ingest.FamilyMetadata{Family: n, Metadata: have[j]})
		}
	}
	return out
}

// All returns every entry, families sorted by name, each family's entries
// oldest first: Add(All()) into an empty store rebuilds this one.
func (s *Store) All() []ingest.FamilyMetadata {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	names := make([]string, 0, len(s.families))
	for n := range s.families {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []ingest.FamilyMetadata
	for _, n := range names {
		for _, md := range s.families[n] {
			out = append(out, ingest.FamilyMetadata{Family: n, Metadata: md})
		}
	}
	return out
}
