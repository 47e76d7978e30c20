package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-tsdb/strata/segments"
)

// cache opens bucket segments for reads without fetching them whole: a
// segment a query needs is opened with segments.OpenSource over ranged
// GETs (its meta.json read once, its index but for a compressed segment's
// series entries, its chunks files' headers and page tables), and the
// series entries and chunks a query reads, or the pages holding
// them, are read by range when it reads them; every range read goes
// through blocks, the bounded on-disk cache of the objects' bytes (see
// ranges.go). An open segment holds (most of) its index in memory: the least
// recently used ones no query holds are closed to keep their indexes
// within openMax bytes; their blocks stay cached for the next open.
type cache struct {
	dir     string
	openMax int64
	bucket  Bucket
	m       *metrics
	pages   *segments.PageCache // the set's: decompressed pages of compressed segments
	blocks  *blockCache

	mtx     sync.Mutex
	entries map[string]*entry // guarded by mtx
	metas   map[string][]byte // meta.json of the segments opened; guarded by mtx
	used    int64             // index bytes of the open entries; guarded by mtx
	tick    uint64            // guarded by mtx

	loads     sync.WaitGroup     // opens in flight
	opens     context.Context    // the opens' parent: cancelled by close
	stopOpens context.CancelFunc // cancels opens
}

type entry struct {
	ready chan struct{} // closed once seg or err is set
	// cancel ends the open while it runs: when every query that waited
	// for it gave up before it ended (abandoned), or the cache closes.
	cancel    context.CancelFunc
	loaded    bool // the open ended; guarded by cache.mtx
	abandoned bool // see cancel; guarded by cache.mtx
	seg       *segments.Segment
	err       error
	size      int64
	refs      int    // queries holding the entry; guarded by cache.mtx
	used      uint64 // cache.tick at the last acquire; guarded by cache.mtx
}

// newCache returns a cache in dir whose blocks take at most maxBytes,
// with the blocks an earlier process left there (each checked by its
// CRC32C when read, as any).
func newCache(dir string, maxBytes int64, b Bucket, m *metrics, pages *segments.PageCache) (*cache, error) {
	blocks, err := newBlockCache(dir, maxBytes, b, m)
	if err != nil {
		return nil, err
	}
	opens, stopOpens := context.WithCancel(context.Background())
	return &cache{dir: dir, openMax: maxBytes / 4, bucket: b, m: m, pages: pages, blocks: blocks,
		entries: map[string]*entry{}, metas: map[string][]byte{}, opens: opens, stopOpens: stopOpens}, nil
}

// acquire returns the segment id, opened unless it is open, held until
// release is called. Concurrent acquires of one segment open it once.
// The open outlives the query that asked first while another waits for
// it; when all that waited give up (their contexts done), it is
// cancelled, its GETs abandoned, and the next acquire opens again.
func (c *cache) acquire(ctx context.Context, id string) (*segments.Segment, func(), error) {
	c.mtx.Lock()
	e, ok := c.entries[id]
	if !ok {
		lctx, cancel := context.WithTimeout(c.opens, 10*time.Minute)
		e = &entry{ready: make(chan struct{}), cancel: cancel}
		c.entries[id] = e
		c.loads.Add(1)
		go c.load(lctx, id, e)
		c.m.cacheMisses.Inc()
	} else {
		c.m.cacheHits.Inc()
	}
	e.refs++
	c.tick++
	e.used = c.tick
	c.mtx.Unlock()
	release := func() {
		c.mtx.Lock()
		e.refs--
		if e.refs == 0 && !e.loaded && !e.abandoned {
			e.abandoned = true
			if c.entries[id] == e {
				delete(c.entries, id)
			}
			e.cancel()
		}
		c.mtx.Unlock()
		c.shrink()
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
	if e.err != nil {
		release()
		return nil, nil, e.err
	}
	return e.seg, release, nil
}

// load opens segment id into e with ctx, detached from the query that
// asked first (which may give up while others wait): the next query finds
// it. An open abandoned meanwhile (see acquire) is closed: no one holds
// it, and the cache no longer lists it.
func (c *cache) load(ctx context.Context, id string, e *entry) {
	defer c.loads.Done()
	defer e.cancel()
	seg, err := c.open(ctx, id)
	c.mtx.Lock()
	e.loaded = true
	var drop *segments.Segment
	switch {
	case e.abandoned:
		drop, e.err = seg, context.Canceled
		if err != nil {
			e.err = err
		}
	case err != nil:
		e.err = err
		if c.entries[id] == e {
			delete(c.entries, id) // the next query tries again
		}
	default:
		e.seg = seg
		e.size = indexSize(seg)
		c.used += e.size
	}
	c.mtx.Unlock()
	close(e.ready)
	if drop != nil {
		_ = drop.Close()
	}
	c.shrink()
}

// open reads the meta.json of segment id (once: it is kept in the block
// cache, whole) and opens the segment over ranged reads.
func (c *cache) open(ctx context.Context, id string) (*segments.Segment, error) {
	c.mtx.Lock()
	mb, ok := c.metas[id]
	c.mtx.Unlock()
	if !ok {
		mb, ok = c.blocks.loadWhole(metaKey(id))
	}
	if !ok {
		rc, err := c.bucket.Get(ctx, metaKey(id), 0, -1)
		if err != nil {
			return nil, unavailable(c.bucket, err)
		}
		mb, err = io.ReadAll(io.LimitReader(rc, 16<<20))
		rc.Close()
		c.m.rangeRequests.Inc()
		if err != nil {
			return nil, unavailable(c.bucket, err)
		}
		c.m.fetchedBytes.Add(float64(len(mb)))
		c.blocks.storeWhole(metaKey(id), mb)
	}
	var fm struct {
		Files []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"files"`
	}
	if err := json.Unmarshal(mb, &fm); err != nil {
		return nil, fmt.Errorf("segment %s in %s: meta.json does not decode: %w", id, c.bucket.Name(), err)
	}
	src := &segmentSource{c: c.blocks, id: id, sizes: map[string]int64{}}
	for _, f := range fm.Files {
		src.sizes[f.Name] = f.Size
	}
	seg, err := segments.OpenSource(ctx, c.bucket.Name()+"/"+segmentPrefix(id), mb, src, c.pages)
	if err != nil {
		var ce *segments.CorruptionError
		if errors.As(err, &ce) || errors.Is(err, segments.ErrUnsupportedVersion) {
			return nil, fmt.Errorf("open segment %s read from %s: %w", id, c.bucket.Name(), err)
		}
		return nil, unavailable(c.bucket, err)
	}
	c.mtx.Lock()
	c.metas[id] = mb
	c.mtx.Unlock()
	return seg, nil
}

// indexSize is what an open segment holds in memory: its index.
func indexSize(seg *segments.Segment) int64 { return seg.IndexSize() }

// shrink drops least recently used entries no query holds until the cache
// is within its bound.
func (c *cache) shrink() {
	for {
		c.mtx.Lock()
		if c.used <= c.openMax {
			c.mtx.Unlock()
			return
		}
		var victim string
		var ve *entry
		for id, e := range c.entries {
			if e.refs == 0 && e.seg != nil && (ve == nil || e.used < ve.used) {
				victim, ve = id, e
			}
		}
		if ve == nil {
			c.mtx.Unlock()
			return
		}
		delete(c.entries, victim)
		c.used -= ve.size
		c.mtx.Unlock()
		c.m.cacheEvictions.Inc()
		_ = ve.seg.Close()
	}
}

// forget drops segment id from the cache (it left the bucket): its
// blocks, and the open segment unless a query holds it (then shrink
// closes it later, or it is never asked for again).
func (c *cache) forget(id string) {
	c.blocks.dropPrefix(segmentPrefix(id))
	c.mtx.Lock()
	delete(c.metas, id)
	e, ok := c.entries[id]
	if !ok || e.seg == nil || e.refs > 0 {
		c.mtx.Unlock()
		return
	}
	delete(c.entries, id)
	c.used -= e.size
	c.mtx.Unlock()
	_ = e.seg.Close()
}

// keepMeta keeps meta.json of segment id, read by a listing, so that
// opening the segment does not GET it again.
func (c *cache) keepMeta(id string, b []byte) { c.blocks.storeWhole(metaKey(id), b) }

// keepOnly drops the blocks of the segments not in ids (the bucket's
// catalog when it is first listed): those that left the bucket while no
// process read through the cache.
func (c *cache) keepOnly(ids map[string]bool) { c.blocks.keepOnly(ids) }

// bytes returns the bytes the cache holds on disk.
func (c *cache) bytes() int64 { return c.blocks.bytes() }

// close cancels the opens in flight, waits for them and closes every
// cached segment.
func (c *cache) close() error {
	c.stopOpens()
	c.loads.Wait()
	c.mtx.Lock()
	defer c.mtx.Unlock()
	var errs []error
	for id, e := range c.entries {
		if e.seg != nil {
			errs = append(errs, e.seg.Close())
		}
		delete(c.entries, id)
	}
	return errors.Join(errs...)
}
