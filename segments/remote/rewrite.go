package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// rewriteDir, under the tier's directory, holds the rewrites of bucket
// segments while they are written and uploaded; New empties it.
const rewriteDir = "rewrite"

// rewriteTombstoned applies deletes in the bucket: each raw segment that
// only the bucket holds and that tombstones name is rewritten without the
// samples they hide (segments.Rewrite: the same sources, one level
// higher), the rewrite uploaded and verified, and only then the original
// deleted (collectBucket: another segment replaces it). A reader that
// lists both reads the rewrite only (Acquire leaves out a replaced
// segment); one that lists one of them reads that one, the original with
// its tombstones. So there is no moment without the data or with it
// twice. A crash midway leaves an upload without meta.json (swept as
// abandoned) or both segments (the next round deletes the original).
// A segment still on the writer's disk is the local compactor's to
// rewrite; a rollup is rebuilt from the rewritten raw data (rollups.go),
// or, where that is gone, keeps its tombstones, applied at read time, as
// locally.
func (t *Tier) rewriteTombstoned(ctx context.Context) error {
	local := map[string]bool{}
	infos := t.set.Segments()
	for _, in := range infos {
		local[in.Meta.ID] = true
	}
	t.mtx.Lock()
	all := make([]segments.Meta, 0, len(t.catalog))
	for _, m := range t.catalog {
		all = append(all, m)
	}
	named := map[string]int{} // bucket-only raw segments, by how many tombstones name them
	for _, r := range t.tombs {
		for _, id := range r.Object.Segments {
			if m, ok := t.catalog[id]; ok && m.Resolution == 0 && !local[id] {
				named[id]++
			}
		}
	}
	t.mtx.Unlock()
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range named {
			if !yield(id) {
				return
			}
		}
	}) {
		m := metaOf(all, id)
		if replaced(m, all) || t.unaffected[id] == named[id] || slices.ContainsFunc(infos, func(in segments.Info) bool {
			return in.Meta.Resolution == m.Resolution && coversSources(in.Meta, m)
		}) {
			// Its rewrite is in the bucket, or its tombstones hide none
			// of it, or a local compaction rewrote it (uploaded in time).
			continue
		}
		if err := t.rewriteOne(ctx, m, named[id]); err != nil {
			return err
		}
	}
	return nil
}

func metaOf(metas []segments.Meta, id string) segments.Meta {
	i := slices.IndexFunc(metas, func(m segments.Meta) bool { return m.ID == id })
	return metas[i]
}

// rewriteOne rewrites bucket segment m without what its n tombstones hide.
func (t *Tier) rewriteOne(ctx context.Context, m segments.Meta, n int) error {
	seg, release, err := t.cache.acquire(ctx, m.ID)
	if err != nil {
		return unavailable(t.bucket, fmt.Errorf("read segment %s to rewrite it: %w", m.ID, err))
	}
	defer release()
	seg = seg.WithContext(ctx) // its GETs end with the round
	newID := segments.NewID(t.opts.Now())
	t.mtx.Lock()
	ts := t.tombstonesForLocked(m.ID)
	t.rewriting[m.ID] = newID // tombstones made from now on name the rewrite too
	t.mtx.Unlock()
	defer func() {
		t.mtx.Lock()
		delete(t.rewriting, m.ID)
		t.mtx.Unlock()
	}()
	hides, err := segments.Hides(seg, ts)
	if err != nil {
		return fmt.Errorf("read segment %s to rewrite it: %w", m.ID, err)
	}
	if !hides {
		t.unaffected[m.ID] = n
		return nil
	}
	// Every chunk is read: its files in a few GETs, not a range at a time.
	if err := seg.PrefetchAll(); err != nil {
		return unavailable(t.bucket, fmt.Errorf("read segment %s to rewrite it: %w", m.ID, err))
	}
	parent := filepath.Join(t.opts.Dir, rewriteDir)
	// All deleted, the rewrite is an empty segment that keeps the
	// original's sources (segments.Rewrite): it replaces it as any rewrite
	// does.
	out, err := segments.Rewrite(ctx, parent, seg, ts, newID, segments.CompactOptions{Ranges: t.opts.Ranges})
	if err != nil {
		return err
	}
	dir := filepath.Join(parent, out.ID)
	defer os.RemoveAll(dir)
	names, err := seg.LabelValues(labels.MetricName) // the original's: a superset
	if err != nil {
		return fmt.Errorf("read metric names of segment %s: %w", m.ID, err)
	}
	sent, err := t.uploadReplacement(ctx, dir, out, names)
	if err != nil {
		return err
	}
	t.m.bucketRewrites.Inc()
	t.logger.Info("rewrote a bucket segment without its deleted samples", "segment", m.ID, "rewrite", out.ID,
		"samples", out.NumSamples, "samples_before", m.NumSamples, "bytes_sent", sent)
	return nil
}

// uploadReplacement uploads the segment a rewrite or a merge made in dir
// (meta.json last, as every upload) and adds it to the catalog, saved,
// before the caller deletes what it replaces; it returns the bytes sent.
func (t *Tier) uploadReplacement(ctx context.Context, dir string, out segments.Meta, names []string) (int64, error) {
	sent, err := upload(ctx, t.bucket, dir, out.ID, names)
	t.m.uploadedBytes.Add(float64(sent))
	if err != nil {
		return sent, unavailable(t.bucket, err)
	}
	t.mtx.Lock()
	t.catalog[out.ID] = out
	t.mtx.Unlock()
	return sent, t.saveCatalog()
}
