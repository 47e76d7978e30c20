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

// dedupGap is how far apart two segments of a replica may be and still
// count as covering the time between them: more than a scrape interval,
// less than an outage worth filling from the other replica.
const dedupGap = 5 * 60 * 1000

// Acquire is Tier.Acquire over every tier. Replicas are deduplicated by
// time range: the tiers whose external labels are equal but for the
// replica label form a pair (or more), ordered by the replica label's
// value; a segment of a later replica is not read where an earlier one
// has segments of its resolution (their spans, joined across gaps of up
// to five minutes), and where it is read, its samples inside those spans
// are hidden by tombstones. So each series is answered from one replica
// per time range, and from the next where the first has no data (it was
// down). The replica label is the writer's external label, not a label
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
	all := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")
	for _, grp := range g.replicaSets() {
		var cover map[int64][][2]int64 // by resolution: the earlier replicas' spans
		for _, t := range grp {
			wantT := want
			if cover != nil {
				c := cover
				wantT = func(m segments.Meta) bool {
					return (want == nil || want(m)) && !within(c[m.Resolution], m.MinTime, m.MaxTime)
				}
			}
			segs, ts, release, err := t.Acquire(ctx, mint, maxt, local, wantT)
			if err != nil {
				releaseAll()
				return nil, nil, func() {}, err
			}
			releases = append(releases, release)
			for _, seg := range segs {
				m := seg.Meta()
				hide := ts[m.ID]
				for _, iv := range cover[m.Resolution] {
					if iv[0] <= m.MaxTime && iv[1] >= m.MinTime {
						hide = append(hide[:len(hide):len(hide)], segments.Tombstone{Matchers: []*labels.Matcher{all}, MinTime: iv[0], MaxTime: iv[1]})
					}
				}
				if len(hide) > 0 {
					tombs[m.ID] = hide
				}
				out = append(out, seg)
			}
			if cover == nil {
				cover = map[int64][][2]int64{}
			}
			for _, m := range t.Metas() {
				cover[m.Resolution] = append(cover[m.Resolution], [2]int64{m.MinTime, m.MaxTime})
			}
			for res := range cover {
				cover[res] = joinSpans(cover[res])
			}
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

// joinSpans sorts spans and joins those that overlap or lie less than
// dedupGap apart.
func joinSpans(spans [][2]int64) [][2]int64 {
	slices.SortFunc(spans, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var out [][2]int64
	for _, s := range spans {
		if n := len(out); n > 0 && s[0] <= out[n-1][1]+dedupGap {
			out[n-1][1] = max(out[n-1][1], s[1])
			continue
		}
		out = append(out, s)
	}
	return out
}

// within reports whether [mint, maxt] lies inside one of the joined spans.
func within(spans [][2]int64, mint, maxt int64) bool {
	for _, s := range spans {
		if s[0] <= mint && maxt <= s[1] {
			return true
		}
	}
	return false
}
