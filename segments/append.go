package segments

import (
	"strings"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// NewChunk returns an empty chunk of encoding enc (XOR, histogram or float
// histogram) and its appender.
func NewChunk(enc chunkenc.Encoding) (chunkenc.Chunk, chunkenc.Appender) {
	var c chunkenc.Chunk
	switch enc {
	case chunkenc.EncHistogram:
		c = chunkenc.NewHistogramChunk()
	case chunkenc.EncFloatHistogram:
		c = chunkenc.NewFloatHistogramChunk()
	default:
		c = chunkenc.NewXORChunk()
	}
	app, _ := c.Appender() // A new chunk never fails to give an appender.
	return c, app
}

// AppendSample appends x, later than every sample in c, to the chunk c whose
// appender is app; c may be nil. prev is the appender of the chunk before c
// when c is nil (or nil): a histogram chunk compares its first sample with
// it to set its counter-reset header.
//
// It returns the chunk that now holds x and its appender. When cut is true
// that is a new chunk starting at x, and c (if not nil) is complete: x is
// of another kind than c's samples, or is a histogram whose counter reset
// or bucket layout does not fit c, as in Prometheus' head. When cut is
// false, cur is c, or c recoded to take new buckets, which replaces c.
//
// The histogram of x may be modified (its spans adjusted to the chunk's).
func AppendSample(c chunkenc.Chunk, app, prev chunkenc.Appender, x *Sample) (cur chunkenc.Chunk, curApp chunkenc.Appender, cut bool) {
	return appendSample(c, app, prev, x, true)
}

// appendSample is AppendSample; ownRecode says whether histogram chunks
// that take new buckets are recoded by recodeHistograms and
// recodeFloatHistograms rather than by chunkenc (tests compare the two).
func appendSample(c chunkenc.Chunk, app, prev chunkenc.Appender, x *Sample, ownRecode bool) (cur chunkenc.Chunk, curApp chunkenc.Appender, cut bool) {
	enc := x.Encoding()
	if c != nil && c.Encoding() != enc {
		c, app, prev = nil, nil, nil
	}
	if c == nil {
		c, app = NewChunk(enc)
		cut = true
	} else {
		prev = nil
	}
	var (
		nc      chunkenc.Chunk
		recoded bool
		err     error
	)
	switch enc {
	case chunkenc.EncHistogram:
		if ownRecode && !cut {
			// Append only; on a layout change x.H now has the
			// widened layout, and the chunk is recoded here.
			_, _, napp, err := app.AppendHistogram(nil, 0, x.T, x.H, true)
			if err == nil {
				return c, napp, false
			}
			// Counter resets and schema changes cut a new chunk below.
			if strings.Contains(err.Error(), "layout change") {
				if rc, rapp, ok := recodeHistograms(c, x.T, x.H); ok {
					return rc, rapp, false
				}
			}
		}
		nc, recoded, app, err = app.AppendHistogram(prev, 0, x.T, x.H, false)
	case chunkenc.EncFloatHistogram:
		if ownRecode && !cut {
			_, _, napp, err := app.AppendFloatHistogram(nil, 0, x.T, x.FH, true)
			if err == nil {
				return c, napp, false
			}
			if strings.Contains(err.Error(), "layout change") {
				if rc, rapp, ok := recodeFloatHistograms(c, x.T, x.FH); ok {
					return rc, rapp, false
				}
			}
		}
		nc, recoded, app, err = app.AppendFloatHistogram(prev, 0, x.T, x.FH, false)
	default:
		app.Append(0, x.T, x.V)
	}
	if err != nil {
		// With appendOnly false the appenders cut a new chunk instead of
		// failing.
		panic("segments: append histogram: " + err.Error())
	}
	if nc != nil {
		c = nc
		cut = cut || !recoded
	}
	return c, app, cut
}

// ChunkFull reports whether c should take no more samples: maxSamples of
// them, or for a histogram chunk 1 KiB once it holds 10 samples
// (Prometheus' target for histogram chunks, whose samples are much larger
// than floats).
func ChunkFull(c chunkenc.Chunk, maxSamples int) bool {
	n := c.NumSamples()
	if n >= maxSamples {
		return true
	}
	return c.Encoding() != chunkenc.EncXOR && n >= 10 && len(c.Bytes()) >= 1024
}
