package remote

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/segments"
)

// Rollups in the bucket.
//
// The downsampler builds and rebuilds the rollups of the writer's set,
// which holds a day only until it is evicted. Once a day's rollups are
// only in the bucket, the raw data under them can still change there:
// late samples merged into the day (merge.go), a delete applied by a
// rewrite (rewrite.go). rebuildRollups brings such a day's rollups up to
// date as the downsampler would: it fills a temporary set with the raw
// segments of the day and of the day before (whose last samples the
// counters continue) and the 5m rollup of the day before, runs a
// downsample.Downsampler on it for that day alone, uploads what it
// writes, and leaves the old rollups to collectBucket: of two rollups of
// one resolution and day, the newer replaces the older (replaced), as in
// the downsampler's own set. A day is rebuilt once the raw segments under
// it are merged and rewritten (so at most as often as it is merged) and
// no local raw segment touches it.

// isRollup reports whether m has a rollup's shape: a resolution and a
// time range of exactly one downsample window.
func isRollup(m segments.Meta) bool {
	return m.Resolution != 0 && m.MaxTime-m.MinTime == downsample.Window-1 &&
		alignDown(m.MinTime-1, downsample.Window) == m.MinTime-1
}

// rollupMetas returns the segments a rollup of the bucket is judged
// against: the local ones and the bucket's that none replaces.
func (t *Tier) rollupMetas() (metas []segments.Meta, local map[string]bool) {
	local = map[string]bool{}
	for _, in := range t.set.Segments() {
		local[in.Meta.ID] = true
		metas = append(metas, in.Meta)
	}
	t.mtx.Lock()
	all := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		all = append(all, m)
	}
	t.mtx.Unlock()
	for _, m := range all {
		if !local[m.ID] && !replaced(m, all) {
			metas = append(metas, m)
		}
	}
	return metas, local
}

// rebuildRollups rebuilds the rollups of the days that only the bucket
// holds whose raw data changed (see above), oldest first, so that a day
// after a rebuilt one, whose counters continue it, is rebuilt next.
func (t *Tier) rebuildRollups(ctx context.Context) error {
	if t.opts.Downsample == nil {
		return nil
	}
	metas, local := t.rollupMetas()
	var days []int64
	for _, m := range metas {
		if m.Resolution == downsample.Res5m && isRollup(m) && !local[m.ID] {
			days = append(days, m.MinTime-1)
		}
	}
	slices.Sort(days)
	for _, w := range slices.Compact(days) {
		inputs, due := t.rollupInputs(w, metas, local)
		if !due {
			continue
		}
		key := strings.Join(inputs, ",")
		if t.rolledFrom[w] == key {
			continue // rebuilt from these already: what judged it due does not go away
		}
		if err := t.rebuildDay(ctx, w, inputs); err != nil {
			return err
		}
		t.rolledFrom[w] = key
		metas, local = t.rollupMetas() // the rebuilt rollups relink the next day
	}
	return nil
}

// rollupInputs judges the rollups of day w (the window (w, w+Window])
// and returns the segments to rebuild them from, sorted, when they are
// due: the 5m rollup holds raw data that is no longer there or lacks
// some that is (late data), continues a rollup of the day before that
// was rebuilt, or has tombstones; or the 1h rollup was built from an
// older 5m rollup, or there is none and the day is old enough for one.
// It is not due while raw data under it is local, waits for a merge, or
// has tombstones a rewrite has not applied yet.
func (t *Tier) rollupInputs(w int64, metas []segments.Meta, local map[string]bool) ([]string, bool) {
	newest := func(res, start int64) (segments.Meta, bool) {
		var out segments.Meta
		found := false
		for _, m := range metas {
			if m.Resolution == res && isRollup(m) && m.MinTime == start+1 && (!found || m.ID > out.ID) {
				out, found = m, true
			}
		}
		return out, found
	}
	r5, ok := newest(downsample.Res5m, w)
	if !ok || local[r5.ID] {
		return nil, false
	}
	f, _ := downsample.CheckFreshness(r5, metas)
	t.mtx.Lock()
	tombstoned := len(t.tombstonesForLocked(r5.ID)) > 0
	t.mtx.Unlock()
	due5 := f.RawComplete && (len(f.Late) > 0 || f.Relinked || tombstoned)
	var due1 bool
	if r1, ok := newest(downsample.Res1h, w); ok {
		f1, _ := downsample.CheckFreshness(r1, metas)
		due1 = f1.Replaced && !local[r1.ID]
	} else {
		fiveM1hAfter := t.opts.Downsample.FiveM1hAfter
		if fiveM1hAfter == 0 {
			fiveM1hAfter = downsample.DefaultOptions().FiveM1hAfter
		}
		due1 = w+downsample.Window < t.opts.Now().Add(-fiveM1hAfter).UnixMilli()
	}
	if !due5 && !due1 {
		return nil, false
	}
	if !due5 {
		return []string{r5.ID}, true // the 1h rollup is built from the 5m one alone
	}
	var inputs []string
	days := map[int64]int{} // bucket-only raw segments by compaction window
	for _, m := range metas {
		if m.Resolution != 0 || m.MinTime > w+downsample.Window || m.MaxTime < w-downsample.Window+1 {
			continue
		}
		if local[m.ID] && m.MaxTime >= w+1 {
			return nil, false // the local downsampler's, or still to be uploaded
		}
		if t.hasTombstones(m.ID, local) {
			return nil, false // rewriteTombstoned (or the local compactor) applies them first
		}
		if !local[m.ID] && len(t.opts.Ranges) > 0 {
			r := t.opts.Ranges[len(t.opts.Ranges)-1]
			days[alignDown(m.MinTime, r)]++
		}
		inputs = append(inputs, m.ID)
	}
	for _, n := range days {
		if n > 1 {
			return nil, false // mergeSmall merges them first (when they settle)
		}
	}
	if prev, ok := newest(downsample.Res5m, w-downsample.Window); ok {
		if t.hasTombstones(prev.ID, local) {
			return nil, false
		}
		inputs = append(inputs, prev.ID)
	}
	slices.Sort(inputs)
	return inputs, true
}

// hasTombstones reports whether segment id, local or in the bucket, has
// tombstones.
func (t *Tier) hasTombstones(id string, local map[string]bool) bool {
	if local[id] {
		return len(t.set.Tombstones(id)) > 0
	}
	t.mtx.Lock()
	defer t.mtx.Unlock()
	return len(t.tombstonesForLocked(id)) > 0
}

// rebuildDay rebuilds the rollups of day w from the segments inputs
// (local or in the bucket) in a temporary set, and uploads them.
func (t *Tier) rebuildDay(ctx context.Context, w int64, inputs []string) error {
	dir := filepath.Join(t.opts.Dir, rewriteDir, "rollups-"+strconv.FormatInt(w, 10))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, id := range inputs {
		if err := t.fetchSegment(ctx, id, filepath.Join(dir, id)); err != nil {
			return err
		}
	}
	set, err := segments.OpenSet(nil, dir)
	if err != nil {
		return fmt.Errorf("open the segments to roll day %d up again: %w", w, err)
	}
	defer set.Close()
	opts := *t.opts.Downsample
	opts.Now = t.opts.Now
	opts.Only = func(start int64) bool { return start == w }
	d, err := downsample.New(nil, set, opts, nil)
	if err != nil {
		return err
	}
	if _, err := d.Run(ctx); err != nil {
		return fmt.Errorf("roll day %d up again: %w", w, err)
	}
	segs, release := set.Acquire(w+1, w+downsample.Window)
	defer release()
	slices.SortFunc(segs, func(a, b *segments.Segment) int { return int(a.Meta().Resolution - b.Meta().Resolution) })
	for _, seg := range segs {
		m := seg.Meta()
		if slices.Contains(inputs, m.ID) || !isRollup(m) || m.MinTime != w+1 {
			continue
		}
		names, err := seg.LabelValues(labels.MetricName)
		if err != nil {
			return fmt.Errorf("read metric names of rollup %s: %w", m.ID, err)
		}
		sent, err := t.uploadReplacement(ctx, seg.Dir(), m, names)
		if err != nil {
			return err
		}
		t.m.rollupRebuilds.Inc()
		t.logger.Info("rebuilt a rollup of a day only the bucket holds", "segment", m.ID, "resolution", m.Resolution,
			"day", w, "from", inputs, "bytes_sent", sent)
	}
	return nil
}

// fetchSegment copies segment id into dir: from the local set if it holds
// it, else every object of it from the bucket.
func (t *Tier) fetchSegment(ctx context.Context, id, dir string) error {
	segs, release := t.set.Acquire(math.MinInt64, math.MaxInt64)
	defer release()
	if i := slices.IndexFunc(segs, func(s *segments.Segment) bool { return s.Meta().ID == id }); i >= 0 {
		return copyDir(segs[i].Dir(), dir)
	}
	prefix := segmentPrefix(id)
	var keys []string
	if err := t.bucket.List(ctx, prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return unavailable(t.bucket, err)
	}
	for _, k := range keys {
		rel := strings.TrimPrefix(k, prefix)
		if rel == namesName {
			continue
		}
		if err := t.fetchObject(ctx, k, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, metaName)); err != nil {
		return unavailable(t.bucket, fmt.Errorf("segment %s: %w", id, ErrNotExist))
	}
	return nil
}

func (t *Tier) fetchObject(ctx context.Context, key, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rc, err := t.bucket.Get(ctx, key, 0, -1)
	if err != nil {
		return unavailable(t.bucket, err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return unavailable(t.bucket, fmt.Errorf("get %s: %w", key, err))
	}
	return nil
}

// copyDir copies the regular files under src into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
}
