// Package wal is the write-ahead log of the in-memory head.
//
// It owns the log's files and their format: numbered segment files in one
// directory, each a sequence of framed records (snappy-compressed,
// length-prefixed, CRC32-Castagnoli-checksummed; see docs/wal-format.md),
// durable appends with group commit, segment rolling, cutting and
// truncation, replay with repair of a torn tail, and the codecs of the
// records the head logs (series and samples).
//
// A record is durable when Log returns (SyncAlways, the default) or within
// Options.SyncInterval of it (SyncInterval). Concurrent Log calls share
// fsyncs: one writer goroutine writes everything queued while the previous
// fsync ran with a single write(2) and a single fsync. A caller about to
// log may announce it (Expect): a commit then waits for the calls
// announced before it started, at most about as long as an fsync takes.
//
// A failed write or fsync (a full disk) makes the WAL unwritable: Log and
// Cut fail with an error wrapping ErrUnwritable, and Err reports it. The
// writer goroutine then cuts the segment back to its acknowledged frames
// and probes with a write and an fsync, before each group commit and every
// Options.RetryInterval; once a probe succeeds the WAL writes again,
// without a reopen.
//
// On start the store calls Replay or ReplayRepair, which hand back every
// record in order and cut a torn tail of the last segment at the last good
// record (logging a warning); a frame length running past the end of the
// file is a torn tail only when no good frame follows it. Any other damage
// is a *CorruptionError that names the segment file and byte offset:
// Replay stops there; ReplayRepair resynchronises on the next frame whose
// checksum holds, replays on, keeps a copy of the segment in quarantine/
// and rewrites it without the damaged bytes.
//
// With SyncInterval a failed fsync is not retried blindly (Linux forgets
// the pages it failed to write): the writer keeps a copy of what it wrote
// since the last good fsync and writes it again before it takes writes.
//
// The package must not know what a record means beyond the codecs in
// record.go, must not keep records in memory after they are written, and
// must not register metrics anywhere but the registry it is given.
package wal
