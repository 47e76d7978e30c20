// Package remote is the tier of segments in S3-compatible object storage,
// below memory and local disk: it uploads a segments.Set's final segments
// to a bucket, deletes the local copies of those verified there once they
// are past storage.local.keep or storage.local.max_bytes, and gives
// queries the segments only the bucket holds, fetched into a bounded local
// cache.
//
// The tier treats a segment as its directory of files (whatever the
// format inside): the data files are uploaded and verified first (size and
// MD5, which the server checks too), meta.json last, so a reader never
// sees half a segment; a crash midway is completed by the next round,
// which sends only what is missing. Segments replaced by a compaction
// whose output is uploaded, and segments past retention, are deleted from
// the bucket (meta.json first). Deletes are uploaded as tombstone objects
// that readers apply at read, and the writer then rewrites the bucket-only
// segments they name without the deleted samples (tombstones.go,
// rewrite.go). When the bucket cannot be reached, ingest
// and local reads go on, uploads wait (Status, metrics), nothing is
// deleted locally, and reads of bucket-only data fail with ErrUnavailable.
//
// A bucket segment is read by ranged GETs, not fetched whole: it is opened
// with segments.OpenSource (meta.json, the index, the chunks files'
// headers and page tables), and the chunks a query reads, or the pages
// that hold them, are fetched when it reads them (prefetched together,
// nearby ranges by one GET), through a bounded on-disk cache of blocks
// (ranges.go). The package must not
// know PromQL; query/ merges what it returns with the head and the local
// segments. The test server is in s3test.
package remote
