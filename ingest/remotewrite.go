package ingest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/golang/snappy"
)

// maxSnappyRatio bounds decoded/encoded length for a valid snappy block: the
// densest element, a 3-byte copy, yields 64 bytes. A header claiming more
// is corrupt, and refusing it early keeps a tiny body from making us
// allocate gigabytes.
const maxSnappyRatio = 22

// maxPooledBuf is the largest decompression buffer kept for reuse.
const maxPooledBuf = 8 << 20

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// DecodeRemoteWrite decodes a Prometheus remote write 1.0 request body: a
// snappy block-compressed prompb.WriteRequest.
//
// Float samples, native histograms (integer and float, every schema
// Prometheus accepts), exemplars and metadata are kept. A histogram that
// fails Prometheus' validation fails the request with ErrInvalidHistogram:
// remote write 1.0 is all-or-nothing for samples. An exemplar Prometheus
// would refuse (invalid labels, labels over 128 runes) is left out and
// counted in Batch.DroppedExemplars, the rest kept, as Prometheus' write
// handler does: a bad exemplar must not cost the sender its samples.
//
// Errors are *Error values with Line 0 that name the offending series.
func DecodeRemoteWrite(body []byte, lim Limits) (*Batch, error) {
	return DecodeRemoteWriteKnown(body, lim, nil)
}

// DecodeRemoteWriteKnown is DecodeRemoteWrite with the help of known
// (nil: none): each series the store holds already carries the store's
// handle of it (Series.Handle), and the labels are kept in memory that
// Batch.Release gives back (valid until then), which costs no allocation
// per series.
func DecodeRemoteWriteKnown(body []byte, lim Limits, known Known) (*Batch, error) {
	return decodeRemoteWrite(body, lim, known, nil)
}

// decodeRemoteWrite is DecodeRemoteWriteKnown with the help of cache
// (nil: none), which must have been made with lim and known.
func decodeRemoteWrite(body []byte, lim Limits, known Known, cache *SeriesCache) (*Batch, error) {
	raw, release, err := unsnappy(body)
	if err != nil {
		return nil, err
	}
	defer release()
	// Label strings handed to the builder alias raw, which goes back to
	// the pool on return: the builder copies what the Batch keeps.
	b := getBuilder(lim)
	defer b.release()
	if known != nil {
		b.known, b.epoch = known, known.KnownEpoch()
		b.cache = cache
	}
	err = decodeWriteRequest(raw, b)
	if cache != nil {
		// Once a request: counters shared by every writer cost a
		// cache line moving between cores at each update.
		cache.hits.Add(int64(b.cacheHits))
		cache.misses.Add(int64(b.cacheLookups - b.cacheHits))
	}
	if err != nil {
		return nil, protoError(err)
	}
	out := b.batch()
	out.DroppedExemplars = b.droppedEx
	return out, nil
}

// unsnappy decompresses a remote write body into a pooled buffer, which
// release gives back once nothing refers to it.
func unsnappy(body []byte) (raw []byte, release func(), err error) {
	if len(body) == 0 {
		return nil, nil, newError(ErrEmptyBody, "empty body")
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, nil, malformed(err, "decode snappy: %v", err)
	}
	if n > maxSnappyRatio*len(body) {
		return nil, nil, malformed(snappy.ErrCorrupt, "decode snappy: header claims %d bytes from %d compressed bytes", n, len(body))
	}
	bp := bufPool.Get().(*[]byte)
	release = func() {
		if cap(*bp) <= maxPooledBuf {
			bufPool.Put(bp)
		}
	}
	raw, err = snappy.Decode((*bp)[:cap(*bp)], body)
	if err != nil {
		release()
		return nil, nil, malformed(err, "decode snappy: %v", err)
	}
	*bp = raw[:0]
	return raw, release, nil
}

// protoError returns err when it is an *Error (validation, limits), and
// wraps it as malformed protobuf otherwise.
func protoError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return malformed(err, "decode protobuf: %v", err)
}

// malformed returns an *Error wrapping both ErrMalformed and cause.
func malformed(cause error, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Err: fmt.Errorf("%w: %w", ErrMalformed, cause)}
}
