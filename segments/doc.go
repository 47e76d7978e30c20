// Package segments owns Strata's immutable on-disk format: the segment.
//
// A segment is a directory <parent>/<id>/ holding every series of one time
// block (or one rollup of it) as Gorilla/XOR chunks:
//
//	meta.json        identity, time range, resolution, counts, compaction
//	                 lineage, and the size and CRC32C of every other file
//	index            symbols, series (label set + chunk metas), postings per
//	                 label pair and a postings table, each section CRC32C
//	                 checksummed, with a table of contents at the end
//	chunks/000001    chunk records (length, encoding, data, CRC32C), cut
//	                 into numbered files of bounded size
//
// Format version 1 stores chunk records and series entries as they are, so
// they are read straight from the mapping; version 2, which compaction
// writes for segments wider than one block (the day segments), stores both
// in zstd-compressed pages (paged.go) with longer chunks, read through a
// bounded PageCache of decompressed pages shared by a Set. Both versions
// are read. The byte layout is documented in docs/format.md.
//
// The package provides a Writer (temporary directory, fsync of every file and
// directory, atomic rename), a reader (Open) that mmaps index and chunk files
// and decodes series and postings on demand, postings-based selection with
// Prometheus matcher semantics, and directory helpers that open every segment
// under a parent, remove leftovers of interrupted writes, and quarantine
// corrupt segments instead of failing.
//
// The same format serves raw segments (ChunkKind KindRaw) and the rollup
// segments written by downsample/ (KindCount, KindSum, KindMin, KindMax,
// KindCounter chunks side by side in one series).
//
// Segments never change once written. This package must not know about
// PromQL, query planning, resolution choice or retention policy: it stores
// and returns label sets and chunks, and reports damage as *CorruptionError.
package segments
