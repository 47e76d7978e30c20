package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// mergeSmall compacts in the bucket: where a window of the last
// compaction range (a day) holds several raw segments that only the
// bucket holds (late samples uploaded after their day, each its own
// segment once the day's segment left the disk), they are merged into
// one (segments.Merge: the union of their sources, so it replaces each),
// applying their tombstones, uploaded and verified; collectBucket then
// deletes the inputs. Readers read the merged segment alone once they
// list it, the inputs until then: no gap, no duplicate. A window that a
// local segment or a bucket segment spanning several windows touches is
// left alone: the merged segment takes the greatest Seq of its inputs,
// right only when no other segment of its time falls between them in
// write order.
//
// A window is merged once its late data has settled (the newest of its
// segments has been in the bucket for Options.MergeAfter) or it has
// waited Options.MergeMaxDelay since it first held several: late data
// that keeps coming is merged at most once per MergeMaxDelay, not every
// round (each merge downloads and uploads the whole day).
func (t *Tier) mergeSmall(ctx context.Context) error {
	if len(t.opts.Ranges) == 0 {
		return nil
	}
	r := t.opts.Ranges[len(t.opts.Ranges)-1]
	t.mtx.Lock()
	all := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		all = append(all, m)
	}
	t.mtx.Unlock()
	blocked := map[int64]bool{}
	block := func(m segments.Meta) {
		for w := alignDown(m.MinTime, r); w <= m.MaxTime && len(blocked) < 1<<16; w += r {
			blocked[w] = true
		}
	}
	infos := t.set.Segments()
	local := map[string]bool{}
	for _, in := range infos {
		local[in.Meta.ID] = true
		if in.Meta.Resolution == 0 {
			block(in.Meta)
		}
	}
	windows := map[int64][]segments.Meta{}
	for _, m := range all {
		if m.Resolution != 0 || replaced(m, all) {
			continue // a rollup, or waiting for collectBucket
		}
		if w := alignDown(m.MinTime, r); w != alignDown(m.MaxTime, r) || local[m.ID] {
			block(m)
		} else {
			windows[w] = append(windows[w], m)
		}
	}
	due := t.settled(windows)
	for _, w := range slices.Sorted(func(yield func(int64) bool) {
		for w := range windows {
			if !yield(w) {
				return
			}
		}
	}) {
		if ms := windows[w]; len(ms) > 1 && !blocked[w] && due[w] {
			if err := t.mergeWindow(ctx, ms); err != nil {
				return err
			}
			delete(t.mergeSince, w)
		}
	}
	return nil
}

// settled records when the candidate segments of windows arrived and
// since when each window has had several, forgetting those that left,
// and returns the windows due for a merge (see mergeSmall).
func (t *Tier) settled(windows map[int64][]segments.Meta) map[int64]bool {
	now := t.opts.Now()
	seen := map[string]bool{}
	due := map[int64]bool{}
	for w, ms := range windows {
		var newest time.Time
		for _, m := range ms {
			seen[m.ID] = true
			at, ok := t.arrived[m.ID]
			if !ok {
				at = now
				t.arrived[m.ID] = at
			}
			if at.After(newest) {
				newest = at
			}
		}
		if len(ms) < 2 {
			delete(t.mergeSince, w)
			continue
		}
		since, ok := t.mergeSince[w]
		if !ok {
			since = now
			t.mergeSince[w] = since
		}
		due[w] = now.Sub(newest) >= t.opts.MergeAfter || now.Sub(since) >= t.opts.MergeMaxDelay
	}
	for id := range t.arrived {
		if !seen[id] {
			delete(t.arrived, id)
		}
	}
	for w := range t.mergeSince {
		if _, ok := windows[w]; !ok {
			delete(t.mergeSince, w)
		}
	}
	return due
}

// mergeWindow merges the bucket segments ms into one.
func (t *Tier) mergeWindow(ctx context.Context, ms []segments.Meta) error {
	slices.SortFunc(ms, segments.WriteOrder)
	var segs []*segments.Segment
	for _, m := range ms {
		seg, release, err := t.cache.acquire(ctx, m.ID)
		if err != nil {
			return unavailable(t.bucket, fmt.Errorf("read segment %s to merge it: %w", m.ID, err))
		}
		defer release()
		segs = append(segs, seg.WithContext(ctx)) // their GETs end with the round
	}
	newID := segments.NewID(t.opts.Now())
	tombs := map[string][]segments.Tombstone{}
	t.mtx.Lock()
	for _, m := range ms {
		tombs[m.ID] = t.tombstonesForLocked(m.ID)
		t.rewriting[m.ID] = newID // tombstones made from now on name the output too
	}
	t.mtx.Unlock()
	defer func() {
		t.mtx.Lock()
		for _, m := range ms {
			delete(t.rewriting, m.ID)
		}
		t.mtx.Unlock()
	}()
	parent := filepath.Join(t.opts.Dir, rewriteDir)
	// All deleted, the output is an empty segment that keeps its inputs'
	// sources (segments.Merge): it replaces them as any merge does.
	out, err := segments.Merge(ctx, parent, segs, func(id string) []segments.Tombstone { return tombs[id] }, newID,
		segments.CompactOptions{Ranges: t.opts.Ranges})
	if err != nil {
		return err
	}
	dir := filepath.Join(parent, out.ID)
	defer os.RemoveAll(dir)
	var names []string
	for _, seg := range segs {
		ns, err := seg.LabelValues(labels.MetricName)
		if err != nil {
			return fmt.Errorf("read metric names of segment %s: %w", seg.Meta().ID, err)
		}
		names = append(names, ns...)
	}
	slices.Sort(names)
	sent, err := t.uploadReplacement(ctx, dir, out, slices.Compact(names))
	if err != nil {
		return err
	}
	t.m.bucketMerges.Inc()
	t.logger.Info("merged bucket segments of one window", "inputs", len(ms), "output", out.ID, "samples", out.NumSamples, "bytes_sent", sent)
	return nil
}
