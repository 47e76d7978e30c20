package remote

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bytes of bucket segments are read by ranged GETs and kept on local
// disk in blocks: blockSize bytes of one object (the last block of an
// object shorter), each in a file of its own followed by the CRC32C of
// its bytes, so that a block damaged on disk is found when it is read,
// deleted and fetched again, never served. (The format's own checksums,
// of the index, of every page and chunk record, guard against damage on
// the way: the segment tells the cache to forget a range whose checksum
// fails and reads it once more; see segments.Source.)
//
// The blocks a read needs that the cache does not hold are fetched
// together: runs of missing blocks closer than maxGap are fetched by one
// GET, the bytes between them included (as Thanos' store gateway
// partitions its ranges), at most fetchParallel GETs at a time. Blocks are
// dropped least recently used first to keep their bytes within the
// cache's bound; a block larger than the bound is read but not kept. A
// read that misses blocks another read is fetching waits for that fetch.
//
// The blocks outlive the process: at start the cache takes the block
// files it finds (newest written first, the oldest dropped beyond the
// bound; their CRC32C is checked when each is read, as always), and the
// tier's first listing of the bucket drops those of segments no longer
// in it (keepOnly). Files are written to a temporary name and renamed,
// without fsync: a block cut short by a crash fails its check and is
// fetched again.
const (
	blockSize     = 16 << 10
	maxGap        = 64 << 10
	fetchParallel = 4
	// hotBlocks of the blocks read last (16 MiB) are kept in memory too, so that
	// chunks read one by one from a block do not read its file each time.
	hotBlocks = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type blockKey struct {
	object string // the object's key in the bucket
	idx    int64  // offset / blockSize; wholeObject for a small object kept whole
}

// wholeObject is the idx of a blockKey that holds a whole object (a
// segment's meta.json), whatever its size.
const wholeObject = -1

type blockEntry struct {
	key  blockKey
	size int64 // bytes on disk
}

// blockCache is the bounded on-disk cache of blocks of bucket objects.
// It is safe for concurrent use: two reads missing the same block may both
// fetch it.
type blockCache struct {
	dir    string
	max    int64
	bucket Bucket
	m      *metrics

	mtx    sync.Mutex
	blocks map[blockKey]*list.Element // of *blockEntry; guarded by mtx
	lru    list.List                  // most recently used at the front; guarded by mtx
	size   int64                      // guarded by mtx
	hot    map[blockKey][]byte        // verified blocks also on disk; guarded by mtx
	// inflight are the blocks being fetched, closed when they are stored
	// (or the fetch failed); guarded by mtx.
	inflight map[blockKey]chan struct{}
	ring     []blockKey // hot's keys, oldest replaced first; guarded by mtx
	next     int        // guarded by mtx
}

// newBlockCache returns the cache in dir, with the blocks an earlier
// process left there.
func newBlockCache(dir string, maxBytes int64, b Bucket, m *metrics) (*blockCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create remote read cache: %w", err)
	}
	c := &blockCache{dir: dir, max: maxBytes, bucket: b, m: m, blocks: map[blockKey]*list.Element{},
		hot: map[blockKey][]byte{}, inflight: map[blockKey]chan struct{}{}}
	if err := c.reload(); err != nil {
		return nil, fmt.Errorf("read remote read cache: %w", err)
	}
	return c, nil
}

// reload takes the block files in dir into the cache's bookkeeping, the
// most recently written first, within the bound: what is beyond it, and
// files that are not blocks (a temporary file of a write cut short), are
// removed.
func (c *blockCache) reload() error {
	type found struct {
		key   blockKey
		size  int64
		mtime time.Time
	}
	var all []found
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(c.dir, p)
		if err != nil {
			return err
		}
		k, ok := parseBlockPath(filepath.ToSlash(rel))
		fi, ierr := d.Info()
		if !ok || ierr != nil || !d.Type().IsRegular() {
			_ = os.Remove(p)
			return nil
		}
		all = append(all, found{k, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b found) int { return b.mtime.Compare(a.mtime) })
	for _, f := range all {
		if c.size+f.size > c.max {
			_ = os.Remove(c.path(f.key))
			continue
		}
		c.blocks[f.key] = c.lru.PushBack(&blockEntry{key: f.key, size: f.size})
		c.size += f.size
	}
	return nil
}

// parseBlockPath returns the key of the block file at rel (slash
// separated, under the cache's directory): the object's key, a dot, the
// block's index.
func parseBlockPath(rel string) (blockKey, bool) {
	i := strings.LastIndexByte(rel, '.')
	if i <= 0 {
		return blockKey{}, false
	}
	idx, err := strconv.ParseInt(rel[i+1:], 10, 64)
	if err != nil || idx < wholeObject || !strings.HasPrefix(rel, segmentsPrefix) {
		return blockKey{}, false
	}
	return blockKey{object: rel[:i], idx: idx}, true
}

func (c *blockCache) path(k blockKey) string {
	return filepath.Join(c.dir, filepath.FromSlash(k.object)) + "." + strconv.FormatInt(k.idx, 10)
}

// bytes returns the bytes the blocks take on disk.
func (c *blockCache) bytes() int64 {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return c.size
}

// read returns length bytes of object (size bytes long) from off.
func (c *blockCache) read(ctx context.Context, object string, size, off, length int64) ([]byte, error) {
	if off < 0 || length < 0 || off+length > size {
		return nil, fmt.Errorf("range %d+%d outside %s of %d bytes", off, length, object, size)
	}
	if length == 0 {
		return []byte{}, nil
	}
	first, last := off/blockSize, (off+length-1)/blockSize
	if first == last {
		// The common case, a chunk or a page within one block, without
		// the maps of get.
		if b, ok := c.load(blockKey{object, first}, blockLen(size, first)); ok {
			lo := off - first*blockSize
			return b[lo : lo+length : lo+length], nil
		}
	}
	blocks, err := c.get(ctx, object, size, [][2]int64{{off, off + length}})
	if err != nil {
		return nil, err
	}
	if first == last {
		b := blocks[first]
		return b[off-first*blockSize : off-first*blockSize+length : off-first*blockSize+length], nil
	}
	out := make([]byte, 0, length)
	for i := first; i <= last; i++ {
		b := blocks[i]
		lo, hi := int64(0), int64(len(b))
		if i == first {
			lo = off - i*blockSize
		}
		if i == last {
			hi = off + length - i*blockSize
		}
		out = append(out, b[lo:hi]...)
	}
	return out, nil
}

// prefetch makes sure the blocks of ranges (each [off, end)) of object are
// cached, fetching the missing ones in as few GETs as the gap rule allows.
func (c *blockCache) prefetch(ctx context.Context, object string, size int64, ranges [][2]int64) error {
	_, err := c.get(ctx, object, size, ranges)
	return err
}

// get returns the blocks that hold ranges, by index: from disk where the
// cache holds them whole, else fetched.
func (c *blockCache) get(ctx context.Context, object string, size int64, ranges [][2]int64) (map[int64][]byte, error) {
	out := map[int64][]byte{}
	var missing []int64
	for _, r := range ranges {
		if r[0] < 0 || r[1] > size || r[0] >= r[1] {
			continue
		}
		for i := r[0] / blockSize; i <= (r[1]-1)/blockSize; i++ {
			if _, ok := out[i]; ok {
				continue
			}
			if b, ok := c.load(blockKey{object, i}, blockLen(size, i)); ok {
				out[i] = b
				continue
			}
			out[i] = nil
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	// Blocks another read is fetching are waited for, not fetched again;
	// the others are this read's to fetch.
	var (
		mine  []int64
		owned = map[int64]bool{}
		waits []int64
		chans []chan struct{}
	)
	c.mtx.Lock()
	for _, i := range missing {
		k := blockKey{object, i}
		if ch, ok := c.inflight[k]; ok {
			waits, chans = append(waits, i), append(chans, ch)
			continue
		}
		c.inflight[k] = make(chan struct{})
		mine, owned[i] = append(mine, i), true
	}
	c.mtx.Unlock()
	runs := coalesce(mine)
	var (
		wg   sync.WaitGroup
		mtx  sync.Mutex
		errs []error
		sem  = make(chan struct{}, fetchParallel)
	)
	for _, run := range runs {
		wg.Add(1)
		sem <- struct{}{} // a cancelled read's GETs fail at once
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, err := c.fetch(ctx, object, size, run[0], run[1])
			c.mtx.Lock()
			for i := run[0]; i <= run[1]; i++ {
				k := blockKey{object, i}
				if ch, ok := c.inflight[k]; ok && owned[i] {
					close(ch)
					delete(c.inflight, k)
				}
			}
			c.mtx.Unlock()
			mtx.Lock()
			defer mtx.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for i, b := range got {
				if v, ok := out[i]; ok && v == nil {
					out[i] = b
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err // the read was given up: not the bucket's fault
	}
	if len(errs) > 0 {
		return nil, unavailable(c.bucket, errors.Join(errs...))
	}
	for j, i := range waits {
		select {
		case <-chans[j]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if b, ok := c.load(blockKey{object, i}, blockLen(size, i)); ok {
			out[i] = b
			continue
		}
		// The other read failed, or the block was not kept: fetch it.
		got, err := c.fetch(ctx, object, size, i, i)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, unavailable(c.bucket, err)
		}
		out[i] = got[i]
	}
	return out, nil
}

// coalesce groups sorted-or-not block indices into runs [first, last] of
// blocks to fetch by one GET each: blocks closer than maxGap join one run.
func coalesce(idx []int64) [][2]int64 {
	sorted := slices.Clone(idx)
	slices.Sort(sorted)
	var runs [][2]int64
	for _, i := range sorted {
		if n := len(runs); n > 0 && (i-runs[n-1][1]-1)*blockSize <= maxGap {
			runs[n-1][1] = max(runs[n-1][1], i)
			continue
		}
		runs = append(runs, [2]int64{i, i})
	}
	return runs
}

func blockLen(size, i int64) int64 { return min(blockSize, size-i*blockSize) }

// fetch GETs blocks first..last of object and stores them.
func (c *blockCache) fetch(ctx context.Context, object string, size, first, last int64) (map[int64][]byte, error) {
	off, end := first*blockSize, min((last+1)*blockSize, size)
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	start := time.Now()
	rc, err := c.bucket.Get(ctx, object, off, end-off)
	c.m.rangeRequests.Inc()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, end-off)
	_, err = io.ReadFull(rc, buf)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("get %s bytes %d..%d: %w", object, off, end, err)
	}
	c.m.fetchedBytes.Add(float64(len(buf)))
	c.m.fetchSeconds.Observe(time.Since(start).Seconds())
	out := make(map[int64][]byte, last-first+1)
	for i := first; i <= last; i++ {
		lo := (i - first) * blockSize
		b := buf[lo : lo+blockLen(size, i) : lo+blockLen(size, i)]
		out[i] = b
		c.store(blockKey{object, i}, b)
	}
	return out, nil
}

// loadWhole returns object, kept whole (storeWhole), if the cache holds
// it undamaged.
func (c *blockCache) loadWhole(object string) ([]byte, bool) {
	return c.load(blockKey{object, wholeObject}, -1)
}

// storeWhole keeps object b whole.
func (c *blockCache) storeWhole(object string, b []byte) { c.store(blockKey{object, wholeObject}, b) }

// load reads block k from disk if the cache holds it and it is whole (its
// length, want bytes, or any for want < 0, and its CRC32C); a damaged
// block is dropped.
func (c *blockCache) load(k blockKey, want int64) ([]byte, bool) {
	c.mtx.Lock()
	e, ok := c.blocks[k]
	if ok {
		c.lru.MoveToFront(e)
	}
	hb, hot := c.hot[k]
	c.mtx.Unlock()
	if hot && ok {
		c.m.blockHits.Inc()
		return hb, true
	}
	if !ok {
		c.m.blockMisses.Inc()
		return nil, false
	}
	b, err := os.ReadFile(c.path(k))
	if err == nil && want < 0 {
		want = max(int64(len(b))-4, 0)
	}
	if err == nil {
		if int64(len(b)) != want+4 || crc32.Checksum(b[:want], castagnoli) != binary.BigEndian.Uint32(b[want:]) {
			err = errors.New("damaged")
			c.m.damagedBlocks.Inc()
		}
	}
	if err != nil {
		c.drop(k)
		c.m.blockMisses.Inc()
		return nil, false
	}
	c.m.blockHits.Inc()
	c.mtx.Lock()
	if _, ok := c.blocks[k]; ok {
		c.makeHotLocked(k, b[:want:want])
	}
	c.mtx.Unlock()
	return b[:want:want], true
}

// makeHotLocked keeps block k in memory, in place of the oldest.
func (c *blockCache) makeHotLocked(k blockKey, b []byte) {
	if _, ok := c.hot[k]; ok {
		return
	}
	if len(c.ring) < hotBlocks {
		c.ring = append(c.ring, k)
	} else {
		delete(c.hot, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % hotBlocks
	}
	c.hot[k] = b
}

// store writes block k to disk and makes room for it.
func (c *blockCache) store(k blockKey, b []byte) {
	n := int64(len(b)) + 4
	if n > c.max {
		return
	}
	p := c.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp := p + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	data := binary.BigEndian.AppendUint32(append(make([]byte, 0, n), b...), crc32.Checksum(b, castagnoli))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		_ = os.Remove(tmp)
		return
	}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if _, ok := c.blocks[k]; ok {
		_ = os.Remove(tmp) // another read stored it first
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return
	}
	c.blocks[k] = c.lru.PushFront(&blockEntry{key: k, size: n})
	c.size += n
	c.makeHotLocked(k, b)
	for c.size > c.max {
		e := c.lru.Back()
		be := e.Value.(*blockEntry)
		c.removeLocked(e)
		_ = os.Remove(c.path(be.key))
		c.m.blockEvictions.Inc()
	}
}

func (c *blockCache) removeLocked(e *list.Element) {
	be := e.Value.(*blockEntry)
	c.lru.Remove(e)
	delete(c.blocks, be.key)
	delete(c.hot, be.key) // its ring slot is reused in turn
	c.size -= be.size
}

// drop removes block k.
func (c *blockCache) drop(k blockKey) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if e, ok := c.blocks[k]; ok {
		c.removeLocked(e)
		_ = os.Remove(c.path(k))
	}
}

// forget drops the blocks of object that overlap [off, off+length).
func (c *blockCache) forget(object string, off, length int64) {
	if length <= 0 {
		return
	}
	for i := off / blockSize; i <= (off+length-1)/blockSize; i++ {
		c.drop(blockKey{object, i})
	}
}

// keepOnly removes the blocks of the segments not in ids (which left the
// bucket, while no process of this cache listed it).
func (c *blockCache) keepOnly(ids map[string]bool) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	gone := map[string]bool{}
	for k, e := range c.blocks {
		id, _, _ := strings.Cut(strings.TrimPrefix(k.object, segmentsPrefix), "/")
		if !ids[id] {
			c.removeLocked(e)
			_ = os.Remove(c.path(k))
			gone[id] = true
		}
	}
	for id := range gone {
		_ = os.RemoveAll(filepath.Join(c.dir, filepath.FromSlash(segmentPrefix(id))))
	}
}

// dropPrefix removes the blocks of every object under prefix (a segment
// that left the bucket).
func (c *blockCache) dropPrefix(prefix string) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	for k, e := range c.blocks {
		if strings.HasPrefix(k.object, prefix) {
			c.removeLocked(e)
			_ = os.Remove(c.path(k))
		}
	}
}

// segmentSource is the segments.Source of one bucket segment: its files
// read through the block cache.
type segmentSource struct {
	c     *blockCache
	id    string
	sizes map[string]int64 // of the segment's files, from its meta.json
}

func (s *segmentSource) object(file string) (string, int64, error) {
	size, ok := s.sizes[file]
	if !ok {
		return "", 0, fmt.Errorf("segment %s has no file %q", s.id, file)
	}
	return objectKey(s.id, file), size, nil
}

// readTimeout bounds one GET of a read, within the query's own deadline
// (the context a query reads a segment with: Tier.Acquire's).
const readTimeout = 2 * time.Minute

func (s *segmentSource) ReadRange(ctx context.Context, file string, off, length int64) ([]byte, error) {
	key, size, err := s.object(file)
	if err != nil {
		return nil, err
	}
	return s.c.read(ctx, key, size, off, length)
}

func (s *segmentSource) Forget(file string, off, length int64) {
	if key, _, err := s.object(file); err == nil {
		s.c.forget(key, off, length)
	}
}

func (s *segmentSource) Prefetch(ctx context.Context, file string, ranges [][2]int64) error {
	key, size, err := s.object(file)
	if err != nil {
		return err
	}
	return s.c.prefetch(ctx, key, size, ranges)
}
