package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Segment format versions. Version 1 stores chunk records and series
// entries as they are; version 2 (written with WriterOptions.Compress, as
// compaction does for segments longer than a block) stores them in zstd
// pages. Versions 3 and 4 are versions 1 and 2 with statistics in the meta
// of every raw chunk (ChunkStats); a segment without raw chunks (a rollup)
// is written as version 1 or 2, to which it is then identical. Version 5
// is version 3 whose chunk statistics also carry the chunk's hour run
// (ChunkStats.Run); versions 6 and 7 are versions 3 and 4 whose float
// chunk statistics carry the hour run and the first value: segments with
// statistics are written in them. This package reads all seven.
const (
	FormatVersionPlain                = 1
	FormatVersionCompressed           = 2
	FormatVersionStats                = 3
	FormatVersionCompressedStats      = 4
	FormatVersionStatsRuns            = 5
	FormatVersionStatsFirst           = 6
	FormatVersionCompressedStatsFirst = 7
	// FormatVersion is the newest version this package writes and reads.
	FormatVersion = FormatVersionCompressedStatsFirst
)

// compressedVersion reports whether segments of format version v store
// chunk records and series entries in zstd pages.
func compressedVersion(v int) bool {
	return v == FormatVersionCompressed || v == FormatVersionCompressedStats || v == FormatVersionCompressedStatsFirst
}

// Compressed reports whether the segment's chunk records and series
// entries are stored in zstd pages (format versions 2 and 4).
func (m Meta) Compressed() bool { return compressedVersion(m.Version) }

const (
	metaFilename  = "meta.json"
	indexFilename = "index"
	chunksDirname = "chunks"
)

// Meta describes a segment. It is stored as meta.json in the segment
// directory.
type Meta struct {
	// ID is the segment's unique, lexically time-sortable identifier (a
	// ULID) and the name of its directory.
	ID string `json:"id"`
	// MinTime and MaxTime bound the samples of the segment, in milliseconds
	// since the epoch, both inclusive.
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
	// Resolution is the rollup bucket width in milliseconds; 0 means raw
	// samples.
	Resolution int64 `json:"resolution"`
	// NumSeries, NumSamples and NumChunks count the content. NumSamples
	// counts the samples of every chunk of every kind.
	NumSeries  uint64 `json:"num_series"`
	NumSamples uint64 `json:"num_samples"`
	NumChunks  uint64 `json:"num_chunks"`
	// Version is the format version: FormatVersionPlain or
	// FormatVersionCompressed.
	Version int `json:"version"`
	// Compaction records where the segment came from.
	Compaction CompactionMeta `json:"compaction"`
	// Seq is the segment's place in write order: a flushed segment takes
	// the next value of the set's persisted sequence (Set.NextSeq), a
	// compacted one the greatest Seq of its inputs. Of equal timestamps the
	// sample of the segment with the greater Seq wins (WriteOrder). 0: a
	// segment written before Seq existed, ordered before every segment that
	// has one, and among those by ID.
	Seq uint64 `json:"seq,omitempty"`
	// HistogramNames are the sorted metric names of the series that hold
	// native histogram chunks, so that a query can tell, without reading
	// chunks, that it may read histograms (which rollups do not hold).
	// Absent in segments written before histograms were stored.
	HistogramNames []string `json:"histogram_names,omitempty"`
}

// CompactionMeta records a segment's lineage.
type CompactionMeta struct {
	// Level is 1 for a segment flushed from the head and one more than the
	// highest level of its inputs for a compacted segment.
	Level int `json:"level"`
	// Sources are the IDs of the level-1 segments whose data this segment
	// holds (its own ID for a level-1 segment).
	Sources []string `json:"sources"`
}

// fileMeta records the size and CRC32C of one file of a segment.
type fileMeta struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	CRC32C string `json:"crc32c"`
}

// metaFile is the content of meta.json: the Meta fields at top level, the
// list of the other files, and a checksum of all of it.
type metaFile struct {
	Meta
	Files []fileMeta `json:"files"`
	// Checksum is the CRC32C (8 hex digits) of the compact JSON encoding of
	// this struct with Checksum empty.
	Checksum string `json:"checksum"`
}

// checksumKey precedes the checksum value in meta.json as written by
// json.MarshalIndent.
const (
	checksumKey         = `"checksum": "`
	checksumPlaceholder = "00000000"
)

// rawChecksum returns the CRC32C of meta.json's bytes with the checksum
// value replaced by zeros. Covering the raw bytes (not a re-encoding) makes
// any damaged byte count, and lets a newer version add fields without
// changing how the checksum is verified.
func rawChecksum(b []byte, value string) (uint32, bool) {
	i := bytes.LastIndex(b, []byte(checksumKey+value+`"`))
	if i < 0 || len(value) != len(checksumPlaceholder) {
		return 0, false
	}
	c := bytes.Clone(b)
	copy(c[i+len(checksumKey):], checksumPlaceholder)
	return crc32c(c), true
}

func formatCRC(c uint32) string { return fmt.Sprintf("%08x", c) }

func parseCRC(s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("bad crc32c %q", s)
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad crc32c %q", s)
	}
	return uint32(v), nil
}

// marshal encodes m and sets its checksum.
func (m *metaFile) marshal() ([]byte, error) {
	m.Checksum = checksumPlaceholder
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	sum, ok := rawChecksum(b, checksumPlaceholder)
	if !ok {
		return nil, errors.New("encode meta: checksum field not found")
	}
	m.Checksum = formatCRC(sum)
	i := bytes.LastIndex(b, []byte(checksumKey+checksumPlaceholder))
	copy(b[i+len(checksumKey):], m.Checksum)
	return b, nil
}

// readMetaFile reads and verifies dir/meta.json. Every error is a
// *CorruptionError except ErrUnsupportedVersion.
func readMetaFile(dir string) (*metaFile, int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFilename))
	if err != nil {
		return nil, 0, &CorruptionError{Dir: dir, File: metaFilename, Offset: -1, Err: err}
	}
	m, err := parseMetaFile(dir, b)
	if err != nil {
		return nil, 0, err
	}
	return m, int64(len(b)), nil
}

// validate checks the invariants of a meta file written by this package.
func (m *metaFile) validate() error {
	if err := validateID(m.ID); err != nil {
		return err
	}
	if m.MinTime > m.MaxTime {
		return fmt.Errorf("min_time %d after max_time %d", m.MinTime, m.MaxTime)
	}
	if m.Resolution < 0 {
		return fmt.Errorf("negative resolution %d", m.Resolution)
	}
	if len(m.Files) < 1 || m.Files[0].Name != indexFilename {
		return errors.New("files: index missing")
	}
	for i, f := range m.Files {
		if i > 0 && f.Name != chunksFileName(uint32(i)) {
			return fmt.Errorf("files: entry %d is %q, want %q", i, f.Name, chunksFileName(uint32(i)))
		}
		if f.Size < 0 {
			return fmt.Errorf("files: %s: negative size", f.Name)
		}
		if _, err := parseCRC(f.CRC32C); err != nil {
			return fmt.Errorf("files: %s: %w", f.Name, err)
		}
	}
	return nil
}

// validateID checks that id can name a segment directory.
func validateID(id string) error {
	switch {
	case id == "":
		return errors.New("empty segment id")
	case id == "." || id == ".." || id == quarantineDirname:
		return fmt.Errorf("reserved segment id %q", id)
	case len(id) > 200:
		return fmt.Errorf("segment id of %d bytes is too long", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return fmt.Errorf("segment id %q: character %q not allowed", id, c)
		}
	}
	return nil
}
