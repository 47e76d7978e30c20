package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments"
)

// Deletes reach segments only the bucket holds through tombstones the tier
// keeps (in <Dir>/tombstones.json): applied when those segments are read,
// dropped when the segment leaves the bucket. Compaction does not rewrite
// bucket segments, so their deleted samples stay in the bucket, hidden.
const tombstonesFile = "tombstones.json"

type tombstoneJSON struct {
	Segment  string        `json:"segment"`
	Matchers []matcherJSON `json:"matchers"`
	MinTime  int64         `json:"min_time"`
	MaxTime  int64         `json:"max_time"`
}

type matcherJSON struct {
	Type  labels.MatchType `json:"type"`
	Name  string           `json:"name"`
	Value string           `json:"value"`
}

// AddTombstone hides the samples in [mint, maxt] of the series matching ms
// in every bucket segment overlapping the range. A segment that is also
// local gets the set's own tombstone; this one covers it once only the
// bucket holds it. The server calls it with the store's flush lock held
// (buffer.Store.DeleteSeries), which local evictions take too.
func (t *Tier) AddTombstone(ms []*labels.Matcher, mint, maxt int64) error {
	t.mtx.Lock()
	n := 0
	for id, m := range t.catalog {
		if m.MinTime > maxt || m.MaxTime < mint {
			continue
		}
		t.tombs[id] = append(t.tombs[id], segments.Tombstone{Matchers: ms, MinTime: mint, MaxTime: maxt})
		n++
	}
	t.mtx.Unlock()
	if n == 0 {
		return nil
	}
	return t.saveTombstones()
}

// tombstonesOf returns the tombstones of the bucket segments ids.
func (t *Tier) tombstonesOf(ids []string) segments.TombstoneView {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	out := segments.TombstoneView{}
	for _, id := range ids {
		if ts := t.tombs[id]; len(ts) > 0 {
			out[id] = ts[:len(ts):len(ts)] // only appended to
		}
	}
	return out
}

func (t *Tier) saveTombstones() error {
	t.mtx.Lock()
	var stored []tombstoneJSON
	for id, ts := range t.tombs {
		if _, ok := t.catalog[id]; !ok {
			delete(t.tombs, id) // the segment left the bucket
			continue
		}
		for _, ts := range ts {
			st := tombstoneJSON{Segment: id, MinTime: ts.MinTime, MaxTime: ts.MaxTime}
			for _, m := range ts.Matchers {
				st.Matchers = append(st.Matchers, matcherJSON{Type: m.Type, Name: m.Name, Value: m.Value})
			}
			stored = append(stored, st)
		}
	}
	t.mtx.Unlock()
	b, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(t.opts.Dir, tombstonesFile), b); err != nil {
		return fmt.Errorf("save object storage tombstones: %w", err)
	}
	return nil
}

func (t *Tier) loadTombstones() error {
	b, err := os.ReadFile(filepath.Join(t.opts.Dir, tombstonesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read object storage tombstones: %w", err)
	}
	var stored []tombstoneJSON
	if err := json.Unmarshal(b, &stored); err != nil {
		return fmt.Errorf("object storage tombstones %s: %w", filepath.Join(t.opts.Dir, tombstonesFile), err)
	}
	for _, st := range stored {
		ts := segments.Tombstone{MinTime: st.MinTime, MaxTime: st.MaxTime}
		for _, m := range st.Matchers {
			lm, err := labels.NewMatcher(m.Type, m.Name, m.Value)
			if err != nil {
				return fmt.Errorf("object storage tombstones: %w", err)
			}
			ts.Matchers = append(ts.Matchers, lm)
		}
		t.tombs[st.Segment] = append(t.tombs[st.Segment], ts)
	}
	return nil
}
