package remote

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/strata-tsdb/strata/segments"
)

// Acquire returns the segments overlapping [mint, maxt] that only the
// bucket holds, fetched into the local cache as needed, their tombstones
// (AddTombstone), and a function that releases them. local are the segments the query read from the
// local set (acquired before this call): a bucket segment with one of
// their IDs, or whose data one of them holds (a local compaction output
// not yet uploaded), is left out, as is one another bucket segment
// replaces. want, when not nil, picks the segments the query reads at all
// (by resolution, say), so that others are not fetched.
//
// The segments read their bytes with ctx (Segment.WithContext): when it
// is done, their pending GETs are abandoned and their reads fail with its
// error. When the bucket cannot be reached, or its catalog is not known
// yet, it fails with ErrUnavailable naming the bucket. Until release, no
// round of this process deletes them from the bucket (see pin).
func (t *Tier) Acquire(ctx context.Context, mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, func(), error) {
	ids, err := t.pin(mint, maxt, local, want)
	if err != nil {
		return nil, nil, func() {}, err
	}
	var (
		out      []*segments.Segment
		releases []func()
	)
	var once sync.Once
	releaseAll := func() {
		once.Do(func() {
			for _, r := range releases {
				r()
			}
			t.unpin(ids)
		})
	}
	for _, id := range ids {
		seg, release, err := t.cache.acquire(ctx, id)
		if err != nil {
			releaseAll()
			return nil, nil, func() {}, fmt.Errorf("read segment %s: %w", id, err)
		}
		out = append(out, seg.WithContext(ctx))
		releases = append(releases, release)
	}
	return out, t.tombstonesOf(ids), releaseAll, nil
}

// pin picks the bucket segments a query of [mint, maxt] reads (see
// Acquire) and holds them against deletion from the bucket by this
// process until unpin: a writer's round does not delete a segment a
// query of its own still reads, whatever Options.DeleteDelay (another
// process's queries are what the delay is for). The choice is made from
// a copy of the catalog and checked against it when pinned: if a segment
// chosen left meanwhile (a round deleted it, a reader's listing found it
// gone), the choice is made again, so that a query never reads a set of
// segments the catalog never held. A segment being deleted is not
// chosen (it is replaced or past retention), nor one past retention.
func (t *Tier) pin(mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) ([]string, error) {
	for {
		t.mtx.Lock()
		if !t.loaded {
			t.mtx.Unlock()
			return nil, fmt.Errorf("%w: bucket %s has not been listed yet (segments only there cannot be read)", ErrUnavailable, t.bucket.Name())
		}
		all := make([]segments.Meta, 0, len(t.catalog))
		for _, m := range t.catalog {
			all = append(all, m)
		}
		deleting := maps.Clone(t.deleting)
		t.mtx.Unlock()
		var ids []string
		for _, m := range all {
			if m.MinTime > maxt || m.MaxTime < mint || (want != nil && !want(m)) || deleting[m.ID] {
				continue
			}
			if t.opts.MinTime != nil && m.MaxTime < t.opts.MinTime(m.Resolution) {
				// Past retention: not read, so that queries that keep
				// coming do not keep it in the bucket (a round deletes it).
				continue
			}
			if slices.ContainsFunc(local, func(l segments.Meta) bool {
				return l.ID == m.ID || l.Resolution == m.Resolution && coversSources(l, m)
			}) || replaced(m, all) {
				continue
			}
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		t.mtx.Lock()
		ok := !slices.ContainsFunc(ids, func(id string) bool {
			_, in := t.catalog[id]
			return !in || t.deleting[id]
		})
		if ok {
			for _, id := range ids {
				t.pins[id]++
			}
		}
		t.mtx.Unlock()
		if ok {
			return ids, nil
		}
	}
}

// unpin releases what pin held.
func (t *Tier) unpin(ids []string) {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	for _, id := range ids {
		if t.pins[id]--; t.pins[id] <= 0 {
			delete(t.pins, id)
		}
	}
}

// claimDelete marks bucket segment id as being deleted, so that no query
// pins it from now on, unless a query of this process holds it: then it
// reports false, and the segment stays until a round after the query.
// The caller ends the claim with endDelete.
func (t *Tier) claimDelete(id string) bool {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	if t.pins[id] > 0 {
		return false
	}
	t.deleting[id] = true
	return true
}

// endDelete ends a claimDelete, the deletion done or failed (a failed
// one is tried again by a later round; the segment is replaced or past
// retention, so no query needs it).
func (t *Tier) endDelete(id string) {
	t.mtx.Lock()
	delete(t.deleting, id)
	t.mtx.Unlock()
}

// Metas returns the metas of the segments in the bucket.
func (t *Tier) Metas() []segments.Meta {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	out := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		out = append(out, m)
	}
	return out
}
