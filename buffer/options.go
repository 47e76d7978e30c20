package buffer

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/strata-tsdb/strata/segments"
)

// Options configures a Head.
type Options struct {
	// ChunkSamples is the number of samples after which an open chunk is
	// closed and a new one started. Zero means 120.
	ChunkSamples int
	// ChunkRange is the time span, in milliseconds, that one chunk may
	// cover; chunks are cut on multiples of it, so a chunk never crosses a
	// boundary that is a multiple of ChunkRange. It must divide the block
	// duration used for flushing. Zero means 1 h: the grid of the hour
	// runs in segment statistics (segments.RunGrid), so that flushed
	// chunks of any scrape interval serve hourly windows without being
	// decoded.
	ChunkRange int64
	// StripeSize is the number of shards of the series maps; a power of two.
	// Zero means 4096.
	StripeSize int
	// OOOBufferSize is how many out-of-order samples a series keeps unsorted
	// before they are sorted into a chunk. Zero means 32.
	OOOBufferSize int
	// MaxOOOChunks is how many sorted out-of-order chunks a series keeps
	// before all its data is merged back into in-order chunks. Zero means 8.
	MaxOOOChunks int
	// MaxSeries limits the number of series in the head; new series beyond
	// it are refused with ErrTooManySeries while existing ones keep
	// ingesting. Zero means no limit.
	MaxSeries int
	// MaxMetadataFamilies bounds the metric families whose metadata (type,
	// unit, help) the head keeps; metadata of further families is
	// dropped. Zero keeps none (DefaultOptions: 50,000).
	MaxMetadataFamilies int
	// MaxExemplars is how many exemplars the head keeps, the most recent
	// ones of all series (Prometheus' storage.exemplars.max-exemplars).
	// Zero keeps none (DefaultOptions: 100,000).
	MaxExemplars int

	// flushing is set by the Head these options configure (its own
	// copy) while a flush runs: out-of-order rebuilds wait until the
	// flush has dropped what it wrote (see flushItemLocked).
	flushing *atomic.Bool
}

// flushRunning reports whether a flush of the head runs now.
func (o *Options) flushRunning() bool { return o.flushing != nil && o.flushing.Load() }

// DefaultOptions returns the options used when a field is left zero.
func DefaultOptions() Options {
	return Options{
		ChunkSamples:  120,
		ChunkRange:    segments.RunGrid,
		StripeSize:    4096,
		OOOBufferSize: 32,
		MaxOOOChunks:  8,

		MaxMetadataFamilies: 50_000,
		MaxExemplars:        100_000,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.ChunkSamples == 0 {
		o.ChunkSamples = d.ChunkSamples
	}
	if o.ChunkRange == 0 {
		o.ChunkRange = d.ChunkRange
	}
	if o.StripeSize == 0 {
		o.StripeSize = d.StripeSize
	}
	if o.OOOBufferSize == 0 {
		o.OOOBufferSize = d.OOOBufferSize
	}
	if o.MaxOOOChunks == 0 {
		o.MaxOOOChunks = d.MaxOOOChunks
	}
	return o
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.ChunkSamples < 2:
		return fmt.Errorf("chunk samples %d: must be at least 2", o.ChunkSamples)
	case o.ChunkRange < 1000:
		return fmt.Errorf("chunk range %dms: must be at least 1s", o.ChunkRange)
	case o.StripeSize < 1 || o.StripeSize&(o.StripeSize-1) != 0:
		return fmt.Errorf("stripe size %d: must be a power of two", o.StripeSize)
	case o.OOOBufferSize < 1:
		return errors.New("out-of-order buffer size must be positive")
	case o.MaxOOOChunks < 1:
		return errors.New("max out-of-order chunks must be positive")
	case o.MaxSeries < 0:
		return errors.New("max series must not be negative")
	case o.MaxExemplars < 0:
		return errors.New("max exemplars must not be negative")
	case o.MaxMetadataFamilies < 0:
		return errors.New("max metadata families must not be negative")
	}
	return nil
}
