package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// tombstonesFile holds the set's tombstones, beside the segment directories.
const tombstonesFile = "tombstones.json"

// Tombstone hides, in one segment, the samples in [MinTime, MaxTime] of the
// series matching all Matchers. Tombstones are applied when the segment is
// read; compaction rewrites the segment without those samples and drops the
// tombstone.
type Tombstone struct {
	Matchers         []*labels.Matcher
	MinTime, MaxTime int64
	// Series, when not nil, hides ranges per series instead (Matchers,
	// MinTime and MaxTime are not used): what object storage's replica
	// deduplication hides of a later replica's segment. Never stored.
	Series SeriesRanges
}

// SeriesRanges are time ranges by series, keyed by the hash of the
// series' labels (Labels.Hash).
type SeriesRanges map[uint64][]SeriesRange

// SeriesRange is the ranges (each [min, max], inclusive) of one series.
type SeriesRange struct {
	Labels labels.Labels
	Ranges [][2]int64
}

// Add appends ranges to those of lset.
func (sr SeriesRanges) Add(lset labels.Labels, ranges [][2]int64) {
	h := lset.Hash()
	for i, e := range sr[h] {
		if labels.Equal(e.Labels, lset) {
			sr[h][i].Ranges = append(e.Ranges, ranges...)
			return
		}
	}
	sr[h] = append(sr[h], SeriesRange{Labels: lset, Ranges: ranges})
}

// Get returns the ranges of lset.
func (sr SeriesRanges) Get(lset labels.Labels) [][2]int64 {
	for _, e := range sr[lset.Hash()] {
		if labels.Equal(e.Labels, lset) {
			return e.Ranges
		}
	}
	return nil
}

// matches reports whether the tombstone applies to lset.
func (t Tombstone) matches(lset labels.Labels) bool {
	for _, m := range t.Matchers {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// tombstoneJSON is the stored form: matchers as type, name and value.
type tombstoneJSON struct {
	Segment  string        `json:"segment"`
	Matchers []matcherJSON `json:"matchers"`
	MinTime  int64         `json:"min_time"`
	MaxTime  int64         `json:"max_time"`
}

type matcherJSON struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

var matchTypes = map[string]labels.MatchType{
	"=": labels.MatchEqual, "!=": labels.MatchNotEqual, "=~": labels.MatchRegexp, "!~": labels.MatchNotRegexp,
}

// errTombstonesDamaged marks a tombstones file that could be read but not
// decoded.
var errTombstonesDamaged = errors.New("tombstones damaged")

func loadTombstones(dir string) (map[string][]Tombstone, error) {
	b, err := os.ReadFile(filepath.Join(dir, tombstonesFile))
	if os.IsNotExist(err) {
		return map[string][]Tombstone{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tombstones: %w", err)
	}
	var stored []tombstoneJSON
	if err := json.Unmarshal(b, &stored); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", errTombstonesDamaged, tombstonesFile, err)
	}
	out := map[string][]Tombstone{}
	for _, st := range stored {
		t := Tombstone{MinTime: st.MinTime, MaxTime: st.MaxTime}
		for _, m := range st.Matchers {
			typ, ok := matchTypes[m.Type]
			if !ok {
				return nil, fmt.Errorf("%w: decode %s: unknown match type %q", errTombstonesDamaged, tombstonesFile, m.Type)
			}
			lm, err := labels.NewMatcher(typ, m.Name, m.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: decode %s: %w", errTombstonesDamaged, tombstonesFile, err)
			}
			t.Matchers = append(t.Matchers, lm)
		}
		out[st.Segment] = append(out[st.Segment], t)
	}
	return out, nil
}

// saveTombstonesLocked writes the tombstones of live segments atomically.
func (s *Set) saveTombstonesLocked() error {
	var stored []tombstoneJSON
	ids := make([]string, 0, len(s.tombstones))
	for id := range s.tombstones {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, t := range s.tombstones[id] {
			st := tombstoneJSON{Segment: id, MinTime: t.MinTime, MaxTime: t.MaxTime}
			for _, m := range t.Matchers {
				st.Matchers = append(st.Matchers, matcherJSON{Type: m.Type.String(), Name: m.Name, Value: m.Value})
			}
			stored = append(stored, st)
		}
	}
	b, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, tombstonesFile), b)
}

// writeFileAtomic writes b to path through a temporary file, fsyncing the
// file and its directory.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// AddTombstone hides the samples in [mint, maxt] of the series matching ms
// in every segment now in the set that overlaps the range, and returns the
// IDs of those segments. Data added to the set later is not affected.
func (s *Set) AddTombstone(ms []*labels.Matcher, mint, maxt int64) ([]string, error) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	var ids []string
	for _, seg := range s.segs {
		if seg.meta.MinTime > maxt || seg.meta.MaxTime < mint {
			continue
		}
		s.tombstones[seg.meta.ID] = append(s.tombstones[seg.meta.ID], Tombstone{Matchers: ms, MinTime: mint, MaxTime: maxt})
		ids = append(ids, seg.meta.ID)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if err := s.saveTombstonesLocked(); err != nil {
		return nil, fmt.Errorf("save tombstones: %w", err)
	}
	return ids, nil
}

// Tombstones returns the tombstones of the segment with the given ID.
func (s *Set) Tombstones(id string) []Tombstone {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	return s.tombstones[id]
}

// DeletedRanges returns the time ranges that tombstones hide for lset,
// or nil.
func DeletedRanges(ts []Tombstone, lset labels.Labels) [][2]int64 {
	var out [][2]int64
	for _, t := range ts {
		if t.Series != nil {
			out = append(out, t.Series.Get(lset)...)
			continue
		}
		if t.matches(lset) {
			out = append(out, [2]int64{t.MinTime, t.MaxTime})
		}
	}
	return out
}

// deletedIterator skips samples inside any of a list of ranges.
type deletedIterator struct {
	chunkenc.Iterator
	ranges [][2]int64
}

// NewDeletedIterator returns it without the samples inside ranges (each
// [min, max], inclusive). With no ranges it returns it.
func NewDeletedIterator(it chunkenc.Iterator, ranges [][2]int64) chunkenc.Iterator {
	if len(ranges) == 0 {
		return it
	}
	return &deletedIterator{Iterator: it, ranges: ranges}
}

func (d *deletedIterator) deleted(t int64) bool {
	for _, r := range d.ranges {
		if t >= r[0] && t <= r[1] {
			return true
		}
	}
	return false
}

func (d *deletedIterator) Next() chunkenc.ValueType {
	for {
		vt := d.Iterator.Next()
		if vt == chunkenc.ValNone || !d.deleted(d.Iterator.AtT()) {
			return vt
		}
	}
}

func (d *deletedIterator) Seek(t int64) chunkenc.ValueType {
	vt := d.Iterator.Seek(t)
	if vt == chunkenc.ValNone || !d.deleted(d.Iterator.AtT()) {
		return vt
	}
	return d.Next()
}
