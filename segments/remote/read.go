package remote

import (
	"context"
	"fmt"
	"slices"

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
// yet, it fails with ErrUnavailable naming the bucket.
func (t *Tier) Acquire(ctx context.Context, mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, func(), error) {
	t.mtx.Lock()
	if !t.loaded {
		t.mtx.Unlock()
		return nil, nil, func() {}, fmt.Errorf("%w: bucket %s has not been listed yet (segments only there cannot be read)", ErrUnavailable, t.bucket.Name())
	}
	all := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		all = append(all, m)
	}
	t.mtx.Unlock()
	var ids []string
	for _, m := range all {
		if m.MinTime > maxt || m.MaxTime < mint || (want != nil && !want(m)) {
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
	var (
		out      []*segments.Segment
		releases []func()
	)
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
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
