package query

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"

	"github.com/strata-tsdb/strata/cache"
)

// Encoded answers. A range query answered wholly from fresh cached extents
// is stored once more, as the bytes the API sent for it, under a key of
// the whole query and with the tags of every extent it was made of. The
// same query is then answered from those bytes, without decoding the
// extents, merging them and encoding JSON again: on a warm dashboard that
// was most of a hit's cost. A bump of any of the tags makes the stored
// answer a miss as it does the extents, so it is always the answer the
// extents would give; the entries stay in this instance (they are
// derived from the extents, which the L2 tier shares).

// Body is an answer encoded as the API sends it.
type Body struct {
	// Bytes is the answer; Gzip says it is gzip-compressed.
	Bytes []byte
	Gzip  bool
	// Series is the number of series in the answer.
	Series int
	// Cache and Resolution are the Result's.
	Cache      CacheStatus
	Resolution Resolution
	// buf, when set, holds Bytes: a buffer of bodyBufs.
	buf *[]byte
}

// Release gives the buffer of an answer read from its stored encoding back
// for another to be read into; Bytes must not be used after. It may be
// called on any Body, more than once.
func (b *Body) Release() {
	if b.buf != nil {
		putBodyBuf(b.buf)
	}
	b.buf, b.Bytes = nil, nil
}

// bodyBufs holds the buffers stored answers are read into, and fresh
// answers encoded into (*[]byte), so that answering one allocates nothing
// in proportion to its size.
var bodyBufs sync.Pool

// NewBody returns a Body whose Bytes are what fill appends to an empty
// buffer of the pool that Release gives buffers back to: an answer
// encoded this way is not grown from a small slice, doubling, for every
// query (a cold query's 80 KB answer cost some 350 KB so). The caller
// owns the Body until it calls Release, after which Bytes must not be
// used; fill must not keep its argument.
func NewBody(fill func(dst []byte) []byte) Body {
	bp := getBodyBuf()
	*bp = fill((*bp)[:0])
	return Body{Bytes: *bp, buf: bp}
}

// maxPooledBody is the capacity above which a buffer is left to the
// garbage collector rather than kept for the next answer.
const maxPooledBody = 4 << 20

func getBodyBuf() *[]byte {
	if bp, ok := bodyBufs.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

func putBodyBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBody {
		*bp = (*bp)[:0]
		bodyBufs.Put(bp)
	}
}

// Encoder encodes results for RangeBody. Format names the encoding (it is
// part of the key of stored answers: change it when Encode's output
// changes); Encode's error is RangeBody's, and nothing is stored then.
type Encoder struct {
	Format string
	Encode func(*Result) (Body, error)
}

// bodyVersion is the first byte of a stored answer.
const bodyVersion = 1

// RangeBody answers a range query as Range does, encoded by enc, and
// answers it from a stored encoding where there is one (Cache is CacheHit
// then). The caller calls Release on the Body once it is done with its
// Bytes.
func (f *Frontend) RangeBody(ctx context.Context, r RangeQuery, bypass bool, enc Encoder) (Body, error) {
	q, res, err := f.newRangeCall(ctx, r, bypass)
	if err != nil {
		return Body{}, err
	}
	if q == nil {
		out, err := f.evalWhole(ctx, r, res)
		if err != nil {
			return Body{}, err
		}
		return encode(enc, out)
	}
	key := q.bodyKey(enc.Format)
	var snap cache.Snapshot
	if key != nil {
		bp := getBodyBuf()
		buf, v, st := f.cache.PeekLocal(*bp, key)
		*bp = buf // grown, perhaps; v is a slice of it
		if st == cache.StatusHit {
			if b, ok := decodeBody(v); ok {
				b.Cache, b.Resolution, b.buf = CacheHit, res, bp
				return b, nil
			}
		}
		putBodyBuf(bp)
		// Before any extent is read: a tag bumped from here on makes
		// the stored answer a miss.
		snap = f.cache.Snapshot()
	}
	pieces, err := q.pieces(ctx)
	if err != nil {
		return Body{}, err
	}
	out, err := q.run(ctx, pieces)
	if err != nil {
		return Body{}, err
	}
	b, err := encode(enc, out)
	if err != nil {
		return Body{}, err
	}
	// Only fresh hits: a stale extent is past its TTL, and an extent
	// computed here or by a concurrent query may have read data before
	// the snapshot.
	if key != nil && out.Cache == CacheHit {
		_ = f.cache.SetLocal(key, q.bodyTags(pieces), snap, appendBody(make([]byte, 0, len(b.Bytes)+16), &b), 0)
	}
	return b, nil
}

// encode encodes out with enc, its status and resolution set.
func encode(enc Encoder, out *Result) (Body, error) {
	b, err := enc.Encode(out)
	b.Cache, b.Resolution = out.Cache, out.Resolution
	return b, err
}

// bodyKey returns the key of the stored answer of the query, or nil when
// some of its pieces is not cached (the freshest steps, or data too near
// the end of retention): it is made of cached extents only.
func (q *rangeCall) bodyKey(format string) []byte {
	if q.ce != q.a.lastStep {
		return nil // a piece of fresh steps follows the extents
	}
	for i := range q.ext {
		if !q.cached(&q.ext[i]) {
			return nil
		}
	}
	f := q.f
	k := make([]byte, 0, 96+len(q.pl.norm)+len(format))
	k = append(k, "b1\x00"...)
	k = append(k, format...)
	k = append(k, 0)
	k = append(k, f.fingerprint...)
	k = append(k, 0)
	k = append(k, q.pl.norm...)
	k = append(k, 0)
	k = strconv.AppendInt(k, q.r.Start.UnixMilli(), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, q.r.End.UnixMilli(), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, q.step, 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, int64(q.pl.res), 10)
	k = append(k, 0)
	k = strconv.AppendInt(k, f.opts.SplitInterval.Milliseconds(), 10)
	return f.appendRerollFrom(k, q.pl)
}

// bodyTags returns the tags of a stored answer: those of its pieces,
// widened where they read counters from rollups.
func (q *rangeCall) bodyTags(pieces []*piece) []string {
	var tags []string
	for _, p := range pieces {
		q.widen(p)
		tags = append(tags, p.tags...)
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}

// appendBody encodes b's bytes and what the API needs of them.
func appendBody(dst []byte, b *Body) []byte {
	flags := byte(0)
	if b.Gzip {
		flags = 1
	}
	dst = append(dst, bodyVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(b.Series))
	return append(dst, b.Bytes...)
}

// decodeBody decodes appendBody's encoding; the bytes are v's.
func decodeBody(v []byte) (Body, bool) {
	if len(v) < 3 || v[0] != bodyVersion || v[1] > 1 {
		return Body{}, false
	}
	n, k := binary.Uvarint(v[2:])
	if k <= 0 || n > uint64(len(v)) {
		return Body{}, false
	}
	return Body{Bytes: v[2+k:], Gzip: v[1] == 1, Series: int(n)}, true
}
