package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// Deletes reach the bucket as tombstone objects, one per delete (per
// matcher set):
//
//	tombstones/<time>-<random>.json   {segments, matchers, min_time, max_time, names}
//
// A tombstone object hides the samples in [min_time, max_time] of the
// series matching the matchers in the segments it names: the segments, in
// the bucket or still on the writer's disk, that overlapped the range
// when the delete was made (data written later is not affected, as with
// Prometheus' delete_series). Its key is fixed when the delete is made and
// its content never changes, so an upload is idempotent (a retry after a
// crash PUTs the same bytes) and verified as a segment's objects are; one
// PUT stores it whole, so a reader never sees half of one. The key starts
// with the time of the delete, so a listing returns deletes in the order
// they were made.
//
// The writer keeps its tombstones in <Dir>/tombstones.json, with whether
// each is uploaded yet; a round uploads those that are not before it
// uploads segments, so a segment the delete names that is uploaded later
// is hidden from its first listing on. A writer's reads apply them to its
// bucket-only segments. A tombstone object is deleted once none of the
// segments it names is in the bucket or on the writer's disk (a
// compaction, local or in the bucket, rewrote them without the deleted
// samples, or retention expired them).
//
// A reader lists tombstones/ before and after it lists the segments, and
// takes those of either listing: a tombstone uploaded before a segment it
// names is in the second listing whenever the segment is in the segment
// listing, and one deleted after the segments it names were is in the
// first whenever one of them is. So a reader never serves a segment
// without a tombstone that names it. A new tombstone invalidates the
// cached answers of its metric names over the days of the segments it
// names (OnNewSegments).
const (
	tombstonesFile   = "tombstones.json"
	tombstonesPrefix = "tombstones/"
)

// tombObject is a tombstone object's content.
type tombObject struct {
	Segments []string      `json:"segments"`
	Matchers []matcherJSON `json:"matchers"`
	MinTime  int64         `json:"min_time"`
	MaxTime  int64         `json:"max_time"`
	// Names are the metric names of the series the delete matched when it
	// was made, for readers' cache invalidation.
	Names []string `json:"names,omitempty"`
}

type matcherJSON struct {
	Type  labels.MatchType `json:"type"`
	Name  string           `json:"name"`
	Value string           `json:"value"`
}

// tombRecord is a tombstone the tier knows: its object key (under
// tombstones/), content, decoded matchers, and, on a writer, whether the
// object is in the bucket.
type tombRecord struct {
	Key      string     `json:"key"`
	Object   tombObject `json:"object"`
	Uploaded bool       `json:"uploaded,omitempty"`

	ms []*labels.Matcher
}

func newTombKey(now int64) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	return fmt.Sprintf("%016d-%s.json", now, hex.EncodeToString(b[:]))
}

func (r *tombRecord) decode() error {
	r.ms = r.ms[:0]
	for _, m := range r.Object.Matchers {
		lm, err := labels.NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return fmt.Errorf("tombstone %s: %w", r.Key, err)
		}
		r.ms = append(r.ms, lm)
	}
	return nil
}

// names returns the metric names whose cached answers the tombstone
// changes: those recorded with it and the value of an equality matcher on
// the name.
func (r *tombRecord) names() []string {
	out := slices.Clone(r.Object.Names)
	for _, m := range r.ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			out = append(out, m.Value)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AddTombstone hides the samples in [mint, maxt] of the series matching ms
// in every segment overlapping the range, in the bucket or on disk, as a
// tombstone object the next round uploads; names are the metric names the
// delete matched (readers invalidate their cached answers). A segment that
// is also local gets the set's own tombstone, which the local compactor
// applies; this one covers the bucket's copy. The server calls it with the
// store's flush lock held (buffer.Store.DeleteSeries), which local
// evictions take too, after the set's AddTombstone. A reader refuses it.
func (t *Tier) AddTombstone(ms []*labels.Matcher, names []string, mint, maxt int64) error {
	if t.opts.Reader {
		return errors.New("object storage: a reader does not delete")
	}
	ids := map[string]bool{}
	for _, in := range t.set.Segments() {
		if in.Meta.MinTime <= maxt && in.Meta.MaxTime >= mint {
			ids[in.Meta.ID] = true
		}
	}
	t.mtx.Lock()
	for id, m := range t.catalog {
		if m.MinTime <= maxt && m.MaxTime >= mint {
			ids[id] = true
		}
	}
	// A rewrite in the bucket under way applies the tombstones known when
	// it began: its output must carry this one.
	for old, out := range t.rewriting {
		if ids[old] {
			ids[out] = true
		}
	}
	if len(ids) == 0 {
		t.mtx.Unlock()
		return nil
	}
	rec := &tombRecord{Key: newTombKey(t.opts.Now().UnixMilli()), Object: tombObject{
		Segments: slices.Sorted(maps.Keys(ids)), MinTime: mint, MaxTime: maxt, Names: names,
	}}
	for _, m := range ms {
		rec.Object.Matchers = append(rec.Object.Matchers, matcherJSON{Type: m.Type, Name: m.Name, Value: m.Value})
	}
	rec.ms = ms
	t.tombs = append(t.tombs, rec)
	t.mtx.Unlock()
	if err := t.saveTombstones(); err != nil {
		return err
	}
	t.Kick()
	return nil
}

// tombstonesOf returns the tombstones of the bucket segments ids.
func (t *Tier) tombstonesOf(ids []string) segments.TombstoneView {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	t.mtx.Lock()
	defer t.mtx.Unlock()
	out := segments.TombstoneView{}
	for _, r := range t.tombs {
		for _, id := range r.Object.Segments {
			if want[id] {
				out[id] = append(out[id], segments.Tombstone{Matchers: r.ms, MinTime: r.Object.MinTime, MaxTime: r.Object.MaxTime})
			}
		}
	}
	return out
}

// tombstonesForLocked returns the tombstones that name segment id.
func (t *Tier) tombstonesForLocked(id string) []segments.Tombstone {
	var out []segments.Tombstone
	for _, r := range t.tombs {
		if slices.Contains(r.Object.Segments, id) {
			out = append(out, segments.Tombstone{Matchers: r.ms, MinTime: r.Object.MinTime, MaxTime: r.Object.MaxTime})
		}
	}
	return out
}

// uploadTombstones uploads, in the order they were made, the tombstones
// not in the bucket yet.
func (t *Tier) uploadTombstones(ctx context.Context) error {
	t.mtx.Lock()
	var todo []*tombRecord
	for _, r := range t.tombs {
		if !r.Uploaded {
			todo = append(todo, r)
		}
	}
	t.mtx.Unlock()
	for _, r := range todo {
		data, err := json.Marshal(r.Object)
		if err != nil {
			return err
		}
		if _, err := putBytesVerified(ctx, t.bucket, tombstonesPrefix+r.Key, data); err != nil {
			return unavailable(t.bucket, fmt.Errorf("upload tombstone %s: %w", r.Key, err))
		}
		t.mtx.Lock()
		r.Uploaded = true
		t.mtx.Unlock()
		t.m.tombstonesUploaded.Inc()
		if err := t.saveTombstones(); err != nil {
			return err
		}
	}
	return nil
}

// collectTombstones deletes the tombstones none of whose segments is in
// the bucket, on disk, or a rewrite under way: what they hid is gone.
func (t *Tier) collectTombstones(ctx context.Context) error {
	local := map[string]bool{}
	for _, in := range t.set.Segments() {
		local[in.Meta.ID] = true
	}
	t.mtx.Lock()
	for _, out := range t.rewriting {
		local[out] = true
	}
	var dead []*tombRecord
	for _, r := range t.tombs {
		live := slices.ContainsFunc(r.Object.Segments, func(id string) bool {
			_, inBucket := t.catalog[id]
			return inBucket || local[id]
		})
		if !live {
			dead = append(dead, r)
		}
	}
	t.mtx.Unlock()
	for _, r := range dead {
		if r.Uploaded {
			if err := t.bucket.Delete(ctx, tombstonesPrefix+r.Key); err != nil {
				return unavailable(t.bucket, err)
			}
		}
		t.mtx.Lock()
		t.tombs = slices.DeleteFunc(t.tombs, func(o *tombRecord) bool { return o == r })
		t.mtx.Unlock()
		if err := t.saveTombstones(); err != nil {
			return err
		}
		t.logger.Info("deleted a tombstone whose segments left object storage", "tombstone", r.Key)
	}
	return nil
}

// listTombstoneKeys returns the keys (without the prefix) of the
// tombstone objects in the bucket.
func listTombstoneKeys(ctx context.Context, b Bucket) (map[string]bool, error) {
	keys := map[string]bool{}
	err := b.List(ctx, tombstonesPrefix, func(k string) error {
		if rest, ok := strings.CutPrefix(k, tombstonesPrefix); ok && strings.HasSuffix(rest, ".json") && !strings.Contains(rest, "/") {
			keys[rest] = true
		}
		return nil
	})
	return keys, err
}

// readTombstone reads the tombstone object key.
func readTombstone(ctx context.Context, b Bucket, key string) (*tombRecord, error) {
	rc, err := b.Get(ctx, tombstonesPrefix+key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, err
	}
	r := &tombRecord{Key: key, Uploaded: true}
	if err := json.Unmarshal(data, &r.Object); err != nil {
		return nil, fmt.Errorf("tombstone %s in %s does not decode: %w", key, b.Name(), err)
	}
	if err := r.decode(); err != nil {
		return nil, err
	}
	return r, nil
}

// tombstonesState is the stored form of the tier's tombstones.
type tombstonesState struct {
	Tombstones []*tombRecord `json:"tombstones"`
}

func (t *Tier) saveTombstones() error {
	t.saveMtx.Lock()
	defer t.saveMtx.Unlock()
	t.mtx.Lock()
	b, err := json.Marshal(tombstonesState{Tombstones: t.tombs})
	t.mtx.Unlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(t.opts.Dir, tombstonesFile), b); err != nil {
		return fmt.Errorf("save object storage tombstones: %w", err)
	}
	return nil
}

// legacyTombstone is what tombstones.json held before tombstones were
// uploaded: one entry per bucket segment, kept only on the writer.
type legacyTombstone struct {
	Segment  string        `json:"segment"`
	Matchers []matcherJSON `json:"matchers"`
	MinTime  int64         `json:"min_time"`
	MaxTime  int64         `json:"max_time"`
}

func (t *Tier) loadTombstones() error {
	path := filepath.Join(t.opts.Dir, tombstonesFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read object storage tombstones: %w", err)
	}
	var st tombstonesState
	if len(b) > 0 && b[0] == '[' {
		// The older form: each entry becomes a tombstone to upload.
		var legacy []legacyTombstone
		if err := json.Unmarshal(b, &legacy); err != nil {
			return fmt.Errorf("object storage tombstones %s: %w", path, err)
		}
		for _, l := range legacy {
			st.Tombstones = append(st.Tombstones, &tombRecord{Key: newTombKey(t.opts.Now().UnixMilli()), Object: tombObject{
				Segments: []string{l.Segment}, Matchers: l.Matchers, MinTime: l.MinTime, MaxTime: l.MaxTime,
			}})
		}
	} else if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("object storage tombstones %s: %w", path, err)
	}
	for _, r := range st.Tombstones {
		if err := r.decode(); err != nil {
			return fmt.Errorf("object storage tombstones %s: %w", path, err)
		}
	}
	t.tombs = st.Tombstones
	return nil
}

// namedByPendingTombstone reports whether a tombstone not uploaded yet
// names segment id.
func (t *Tier) namedByPendingTombstone(id string) bool {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	for _, r := range t.tombs {
		if !r.Uploaded && slices.Contains(r.Object.Segments, id) {
			return true
		}
	}
	return false
}
