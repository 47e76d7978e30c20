package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// Group is the tiers a server reads: a writer's one, or, for a reader,
// one per writer prefix it merges. Queries read the segments of every
// tier; the tiers of an HA pair (writers whose external labels differ
// only in the replica label) are deduplicated at read: see Acquire.
type Group struct {
	tiers        []*Tier
	replicaLabel string
	memo         coverMemo // what earlier replicas hold of later replicas' segments (dedup.go)
}

// NewGroup returns the group of tiers; replicaLabel names the external
// label that tells replicas apart (empty: no deduplication).
func NewGroup(tiers []*Tier, replicaLabel string) *Group {
	return &Group{tiers: tiers, replicaLabel: replicaLabel}
}

// Tiers returns the group's tiers.
func (g *Group) Tiers() []*Tier { return g.tiers }

// Start starts every tier's rounds.
func (g *Group) Start() {
	for _, t := range g.tiers {
		t.Start()
	}
}

// Kick asks every tier for a round soon.
func (g *Group) Kick() {
	for _, t := range g.tiers {
		t.Kick()
	}
}

// Close closes every tier.
func (g *Group) Close() error {
	var errs []error
	for _, t := range g.tiers {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// Sync runs a round of every tier now.
func (g *Group) Sync(ctx context.Context) error {
	var errs []error
	for _, t := range g.tiers {
		errs = append(errs, t.Sync(ctx))
	}
	return errors.Join(errs...)
}

// Status sums the tiers' states: up when every bucket prefix is.
func (g *Group) Status() Status {
	var out Status
	out.BucketUp = true
	var names, errs []string
	for _, t := range g.tiers {
		st := t.Status()
		names = append(names, st.Bucket)
		if !st.BucketUp {
			out.BucketUp = false
			errs = append(errs, st.LastError)
		}
		out.Queued += st.Queued
		out.BucketSegments += st.BucketSegments
		out.CacheBytes += st.CacheBytes
	}
	out.Bucket = strings.Join(names, ", ")
	out.LastError = strings.Join(errs, "; ")
	return out
}

// OnNewSegments sets f on every tier (see Tier.OnNewSegments).
func (g *Group) OnNewSegments(f func(names []string, mint, maxt int64)) {
	for _, t := range g.tiers {
		t.OnNewSegments(f)
	}
}

// AddTombstone adds the tombstone to every tier (see Tier.AddTombstone).
func (g *Group) AddTombstone(ms []*labels.Matcher, names []string, mint, maxt int64) error {
	var errs []error
	for _, t := range g.tiers {
		errs = append(errs, t.AddTombstone(ms, names, mint, maxt))
	}
	return errors.Join(errs...)
}

// Metas returns the metas of every tier's bucket segments.
func (g *Group) Metas() []segments.Meta {
	var out []segments.Meta
	for _, t := range g.tiers {
		out = append(out, t.Metas()...)
	}
	return out
}

// dedupGap is the least gap in a series of an earlier replica that a
// later replica fills (dedup.go): more than a scrape interval, less than
// an outage worth filling.
const dedupGap = 5 * 60 * 1000

// Acquire is Tier.Acquire over every tier. Replicas are deduplicated per
// series: the tiers whose external labels are equal but for the replica
// label form a pair (or more), ordered by the replica label's value; a
// later replica's segments are read with per-series tombstones hiding
// what the earlier ones hold of each series (dedup.go), so each series is
// answered from the first replica that has samples of it at a time, and
// from the next where the first has a gap (it was down, or never had the
// series). The replica label is the writer's external label, not a label
// of the series: series that both replicas hold have equal labels.
func (g *Group) Acquire(ctx context.Context, mint, maxt int64, local []segments.Meta, want func(segments.Meta) bool) ([]*segments.Segment, segments.TombstoneView, func(), error) {
	if len(g.tiers) == 1 {
		return g.tiers[0].Acquire(ctx, mint, maxt, local, want)
	}
	var (
		out      []*segments.Segment
		tombs    = segments.TombstoneView{}
		releases []func()
	)
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	for _, grp := range g.replicaSets() {
		var earlier []*Tier
		for _, t := range grp {
			segs, ts, release, err := t.Acquire(ctx, mint, maxt, local, want)
			if err != nil {
				releaseAll()
				return nil, nil, func() {}, err
			}
			releases = append(releases, release)
			for _, seg := range segs {
				m := seg.Meta()
				hide := ts[m.ID]
				if len(earlier) > 0 {
					sr, err := g.covered(ctx, seg, earlier, local)
					if err != nil {
						releaseAll()
						return nil, nil, func() {}, err
					}
					if len(sr) > 0 {
						hide = append(hide[:len(hide):len(hide)], segments.Tombstone{Series: sr})
					}
				}
				if len(hide) > 0 {
					tombs[m.ID] = hide
				}
				out = append(out, seg)
			}
			earlier = append(earlier, t)
		}
	}
	slices.SortFunc(out, func(a, b *segments.Segment) int { return segments.WriteOrder(a.Meta(), b.Meta()) })
	return out, tombs, releaseAll, nil
}

// replicaSets groups the tiers by their external labels without the
// replica label, each group in the order of the replica label's value.
// A tier whose external labels are not known yet is a group of its own.
func (g *Group) replicaSets() [][]*Tier {
	type member struct {
		t       *Tier
		replica string
	}
	byKey := map[string][]member{}
	var keys []string
	for i, t := range g.tiers {
		ext, ok := t.ExternalLabels()
		replica, hasReplica := ext[g.replicaLabel]
		key := fmt.Sprintf("#%d", i)
		if ok && g.replicaLabel != "" && hasReplica {
			rest := maps.Clone(ext)
			delete(rest, g.replicaLabel)
			key = labels.FromMap(rest).String()
		}
		if _, seen := byKey[key]; !seen {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], member{t, replica})
	}
	out := make([][]*Tier, 0, len(keys))
	for _, k := range keys {
		ms := byKey[k]
		slices.SortStableFunc(ms, func(a, b member) int { return cmp.Compare(a.replica, b.replica) })
		grp := make([]*Tier, len(ms))
		for i, m := range ms {
			grp[i] = m.t
		}
		out = append(out, grp)
	}
	return out
}
