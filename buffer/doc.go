// Package buffer owns the head: the in-memory part of Strata's storage that
// every acknowledged write lands in before it is flushed to an immutable
// segment.
//
// The head keeps, per series, Gorilla (XOR) chunks from
// prometheus/tsdb/chunkenc: closed chunks that never change again, one open
// chunk that in-order samples are appended to, and out-of-order data kept
// apart (a small unsorted buffer that is sorted into chunks of its own). Reads
// merge all of them in time order; for samples with the same timestamp the
// last write wins. Series live in a striped hash map (no global mutex on the
// append path) and are found for label matchers through an inverted index.
//
// The head is fed through the write-ahead log in buffer/wal and flushed into
// package segments. It must not serve HTTP or know PromQL.
package buffer
