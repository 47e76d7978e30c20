package ingest

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// SeriesCache remembers the series of remote write 1.0 requests by the
// bytes a request carries their labels in, as VictoriaMetrics does with its
// raw metric names: a series a sender repeats (every series of every
// request, in Prometheus' shape) is found by a hash of those bytes and one
// comparison of them with the label set remembered, without decoding its
// labels, validating them, hashing them, or asking the store for it.
//
// An entry holds the label set the bytes decode to, validated under the
// cache's Limits, and the store's handle of the series (Known.KnownSeries)
// with the epoch it was given in (Known.KnownEpoch). A decoder finding an
// entry of an older epoch asks the store again: a series removed since is
// never handed out. Only series the store held already when a request
// came are remembered (the second time they are sent): a load of new
// series costs the cache nothing.
//
// The cache is a fixed table of slots, each entry immutable: lookups take
// no lock, and a new entry replaces an old one where its slots are full,
// so that the memory is bounded by the number of slots (an entry costs
// its label bytes, its label set and about 80 bytes). Entries are kept
// for the life of the process only.
//
// A SeriesCache is safe for concurrent use.
type SeriesCache struct {
	lim   Limits
	known Known
	seed  maphash.Seed
	slots []atomic.Pointer[cachedSeries]
	mask  uint64

	hits, misses atomic.Int64  // for tests and figures, added once a request
	full         atomic.Uint64 // misses that found their slots taken (slotFor)

	// names interns the metric names of entries: the entries of one
	// name share its bytes, so a reader comparing the names of a
	// request's series (api's touchedBy) finds equal ones equal by
	// their pointers, without loading each entry's label bytes again.
	namesMtx sync.Mutex
	names    map[string]string // guarded by namesMtx; at most maxInternedNames
}

// maxInternedNames bounds SeriesCache.names; names past it are not
// interned (each entry keeps its own).
const maxInternedNames = 1 << 14

// intern returns the interned copy of name, or name when there are too
// many names.
func (c *SeriesCache) intern(name string) string {
	c.namesMtx.Lock()
	defer c.namesMtx.Unlock()
	if s, ok := c.names[name]; ok {
		return s
	}
	if len(c.names) >= maxInternedNames {
		return name
	}
	if c.names == nil {
		c.names = map[string]string{}
	}
	s := strings.Clone(name)
	c.names[s] = s
	return s
}

// cachedSeries is one entry: immutable once published.
type cachedSeries struct {
	key uint64 // maphash of the label bytes
	// raw is the label bytes themselves, so that a hit costs one
	// comparison of bytes (a label-by-label comparison of the request's
	// bytes with lset, rawMatches, was about 10 % of the server's CPU on
	// requests of 2,000 cached series). lset's encoding and raw are one
	// allocation, in this order (decodeAhead loads both).
	raw    string
	lset   labels.Labels // what they decode to; valid under the cache's limits
	name   string        // lset's __name__, interned (SeriesCache.names)
	hash   uint64        // lset.Hash()
	handle any           // known's handle of the series in epoch
	epoch  uint64
}

// seriesCacheWays is the number of consecutive slots an entry may take:
// a key looks at these only.
const seriesCacheWays = 4

// DefaultSeriesCacheSlots is the number of series a SeriesCache made by
// the server remembers at most: about 40 MB with label sets of 100 bytes.
const DefaultSeriesCacheSlots = 1 << 17

// NewSeriesCache returns a cache of at most slots series (rounded up to a
// power of two; at least seriesCacheWays) found in known, decoded under
// lim. It caches nothing where a labels.Labels is not its encoding (the
// slicelabels and dedupelabels builds).
func NewSeriesCache(lim Limits, known Known, slots int) *SeriesCache {
	if known == nil || !arenaLabels {
		return nil
	}
	n := seriesCacheWays
	for n < slots {
		n <<= 1
	}
	return &SeriesCache{lim: lim, known: known, seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cachedSeries], n), mask: uint64(n - 1)}
}

// DecodeRemoteWrite is DecodeRemoteWriteKnown under the cache's limits
// and Known, with the cache's help.
func (c *SeriesCache) DecodeRemoteWrite(body []byte) (*Batch, error) {
	return decodeRemoteWrite(body, c.lim, c.known, c)
}

// Stats returns the lookups that found their series and those that did
// not (the requests' series of the label layout the cache can read).
func (c *SeriesCache) Stats() (hits, misses int64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

func (c *SeriesCache) key(raw []byte) uint64 { return maphash.Bytes(c.seed, raw) & cacheKeyMask }

// cacheKeyMask is applied to the keys of label bytes. Tests set it to 0
// so that every key collides with every other; the comparison of the
// label bytes must keep them apart.
var cacheKeyMask = ^uint64(0)

// lookup returns the entry of the label bytes raw, whose key is key, or
// nil.
func (c *SeriesCache) lookup(key uint64, raw []byte) *cachedSeries {
	for i := range uint64(seriesCacheWays) {
		e := c.slots[(key+i)&c.mask].Load()
		if e == nil {
			// Slots are never emptied, and an entry takes the first
			// empty one of its key's: none is further on.
			break
		}
		if e.key == key && e.raw == string(raw) {
			return e
		}
	}
	return nil
}

// slotFor returns the slot to publish the entry of the series lset,
// whose label bytes have the key key, in: its own, or an empty one of its
// key's. When they are all taken by others, it returns one of them one
// time in seriesCacheEvictEvery, and nil the other times: with more series
// than slots, not every miss costs an entry made and dropped.
func (c *SeriesCache) slotFor(key uint64, lset labels.Labels) *atomic.Pointer[cachedSeries] {
	for i := range uint64(seriesCacheWays) {
		slot := &c.slots[(key+i)&c.mask]
		if old := slot.Load(); old == nil || old.key == key && labels.Equal(old.lset, lset) {
			return slot
		}
	}
	if c.full.Add(1)%seriesCacheEvictEvery != 0 {
		return nil
	}
	return &c.slots[(key+key>>62)&c.mask] // one of the ways, picked by the key's top bits
}

// seriesCacheEvictEvery: see slotFor.
const seriesCacheEvictEvery = 8

// remember caches the series whose label bytes are raw, with the
// validated label set lset of hash hash (it copies raw and lset) and the
// store's handle of it in epoch; raw must decode to exactly lset
// (rawMatches), which it checks: a later request's label bytes equal to
// raw then decode to lset too.
func (c *SeriesCache) remember(raw []byte, lset labels.Labels, hash uint64, handle any, epoch uint64) {
	data := labelsData(lset)
	if !rawMatches(raw, data) {
		return // a layout the cache does not read: empty values, unsorted, long strings
	}
	key := c.key(raw)
	if slot := c.slotFor(key, lset); slot != nil {
		both := data + string(raw) // one allocation
		lset := labelsFromData(both[:len(data)])
		slot.Store(&cachedSeries{key: key, raw: both[len(data):], lset: lset, name: c.intern(lset.Get(labels.MetricName)), hash: hash, handle: handle, epoch: epoch})
	}
}

// renew replaces e by an entry with the handle of its series in epoch.
func (c *SeriesCache) renew(e *cachedSeries, handle any, epoch uint64) {
	if slot := c.slotFor(e.key, e.lset); slot != nil {
		slot.Store(&cachedSeries{key: e.key, raw: e.raw, lset: e.lset, name: e.name, hash: e.hash, handle: handle, epoch: epoch})
	}
}

// rawMatches reports whether raw, the label fields of a TimeSeries (each
// "0a len Label"), holds exactly the labels of the encoding data
// (labelsData), in the same order, each in the layout every sender writes
// (name then value, each under 128 bytes). Any other layout is no match:
// the decoder then takes the general path, which reads it.
func rawMatches(raw []byte, data string) bool {
	j := 0
	for i := 0; i < len(raw); {
		// 0a L 0a n name 12 m value, with L = 4+n+m < 128.
		if i+6 > len(raw) || raw[i] != 0x0a || raw[i+2] != 0x0a {
			return false
		}
		l, n := int(raw[i+1]), int(raw[i+3])
		if l >= 0x80 || n >= 0x80 {
			return false
		}
		v := i + 4 + n // the value's tag
		end := i + 2 + l
		if end > len(raw) || v+2 > end || raw[v] != 0x12 {
			return false
		}
		m := int(raw[v+1])
		if m >= 0x80 || v+2+m != end || m == 0 {
			return false
		}
		// data: n name m value, lengths under 128 are one byte.
		if j+2+n+m > len(data) || int(data[j]) != n || string(raw[i+4:v]) != data[j+1:j+1+n] {
			return false
		}
		j += 1 + n
		if int(data[j]) != m || string(raw[v+2:end]) != data[j+1:j+1+m] {
			return false
		}
		j += 1 + m
		i = end
	}
	return j == len(data)
}
