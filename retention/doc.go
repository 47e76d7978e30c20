// Package retention deletes what the retention policy says is too old: whole
// segments past the age limit of their resolution, and the oldest segments
// while the segments exceed the disk-size limit. It reports what it dropped,
// so that caches can forget it.
//
// It must not delete a segment a query still reads: it only takes segments
// out of the set, which deletes them once their last reader is done.
// Filtering the part of a segment that has expired but is still on disk is
// the querier's job (MinTime gives the bound).
package retention
