package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/strata-tsdb/strata/segments"
)

// cache keeps copies of bucket segments on local disk for reads: a
// segment a query needs is fetched whole (every object under its prefix)
// into <dir>/<id>, opened with segments.OpenWithCache and the set's page cache (which checks meta.json, the
// sizes and the index's CRC32C; each chunk's CRC is checked when read),
// and kept until the cache holds more than maxBytes, when the least
// recently used segments that no query holds are closed and deleted.
// Queries may hold more than maxBytes between them: the bound is on what
// is kept after they finish.
type cache struct {
	dir      string
	maxBytes int64
	bucket   Bucket
	m        *metrics
	pages    *segments.PageCache // the set's: decompressed pages of compressed segments

	mtx     sync.Mutex
	entries map[string]*entry // guarded by mtx
	used    int64             // bytes of the loaded entries; guarded by mtx
	tick    uint64            // guarded by mtx

	loads sync.WaitGroup // fetches in flight
}

type entry struct {
	ready chan struct{} // closed once seg or err is set
	seg   *segments.Segment
	err   error
	size  int64
	refs  int    // queries holding the entry; guarded by cache.mtx
	used  uint64 // cache.tick at the last acquire; guarded by cache.mtx
}

// newCache empties dir (what an earlier process left there is not
// trusted) and returns a cache in it.
func newCache(dir string, maxBytes int64, b Bucket, m *metrics, pages *segments.PageCache) (*cache, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear remote read cache: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create remote read cache: %w", err)
	}
	return &cache{dir: dir, maxBytes: maxBytes, bucket: b, m: m, pages: pages, entries: map[string]*entry{}}, nil
}

// acquire returns the segment id, fetched from the bucket unless it is
// cached, held until release is called. Concurrent acquires of one
// segment fetch it once.
func (c *cache) acquire(ctx context.Context, id string) (*segments.Segment, func(), error) {
	c.mtx.Lock()
	e, ok := c.entries[id]
	if !ok {
		e = &entry{ready: make(chan struct{})}
		c.entries[id] = e
		c.loads.Add(1)
		go c.load(id, e)
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

// load fetches segment id into e, detached from the query that asked
// first (which may give up): the next query finds it.
func (c *cache) load(id string, e *entry) {
	defer c.loads.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	seg, size, err := c.fetch(ctx, id)
	c.mtx.Lock()
	e.seg, e.size, e.err = seg, size, err
	if err != nil {
		delete(c.entries, id) // the next query tries again
	} else {
		c.used += size
		c.m.fetchSeconds.Observe(time.Since(start).Seconds())
		c.m.fetchedBytes.Add(float64(size))
	}
	c.mtx.Unlock()
	close(e.ready)
	c.shrink()
}

// fetch downloads every object of segment id into a temporary directory,
// renames it into place and opens it.
func (c *cache) fetch(ctx context.Context, id string) (*segments.Segment, int64, error) {
	var keys []string
	if err := c.bucket.List(ctx, segmentPrefix(id), func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return nil, 0, unavailable(c.bucket, err)
	}
	tmp := filepath.Join(c.dir, id+".tmp-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	final := filepath.Join(c.dir, id)
	cleanup := func() { _ = os.RemoveAll(tmp) }
	var size int64
	for _, k := range keys {
		rel := k[len(segmentPrefix(id)):]
		if rel == namesName {
			continue // the uploader's, not a file of the segment
		}
		n, err := c.download(ctx, k, filepath.Join(tmp, filepath.FromSlash(rel)))
		if err != nil {
			cleanup()
			return nil, 0, unavailable(c.bucket, err)
		}
		size += n
	}
	if err := os.RemoveAll(final); err != nil {
		cleanup()
		return nil, 0, err
	}
	if err := os.Rename(tmp, final); err != nil {
		cleanup()
		return nil, 0, err
	}
	seg, err := segments.OpenWithCache(final, c.pages)
	if err != nil {
		_ = os.RemoveAll(final)
		return nil, 0, fmt.Errorf("open segment %s fetched from %s: %w", id, c.bucket.Name(), err)
	}
	return seg, size, nil
}

func (c *cache) download(ctx context.Context, key, path string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	rc, err := c.bucket.Get(ctx, key, 0, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// shrink drops least recently used entries no query holds until the cache
// is within its bound.
func (c *cache) shrink() {
	for {
		c.mtx.Lock()
		if c.used <= c.maxBytes {
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
		if err := segments.Remove(ve.seg); err != nil {
			_ = os.RemoveAll(filepath.Join(c.dir, victim))
		}
	}
}

// forget drops segment id from the cache (it left the bucket).
func (c *cache) forget(id string) {
	c.mtx.Lock()
	e, ok := c.entries[id]
	if !ok || e.seg == nil || e.refs > 0 {
		// Held by a query (or loading): it is dropped by shrink later, or
		// never asked for again.
		c.mtx.Unlock()
		return
	}
	delete(c.entries, id)
	c.used -= e.size
	c.mtx.Unlock()
	_ = segments.Remove(e.seg)
}

// bytes returns the bytes the cache holds on disk.
func (c *cache) bytes() int64 {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return c.used
}

// close waits for the fetches in flight and closes every cached segment.
func (c *cache) close() error {
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
