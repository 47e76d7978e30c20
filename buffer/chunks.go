package buffer

import (
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// appendToChunk is segments.AppendSample on a memChunk: it appends x to c
// (which may be nil) and returns the open chunk that now holds x, its
// appender, and done: c when x had to start a new chunk, which the caller
// closes. A chunk recoded for new histogram buckets stays the same memChunk.
//
// A new float chunk starts small (newOpenMemChunk): most series get a few
// samples between flushes.
func appendToChunk(c *memChunk, app, prev chunkenc.Appender, x *sample) (cur *memChunk, curApp chunkenc.Appender, done *memChunk) {
	if x.H == nil && x.FH == nil && (c == nil || c.chunk.Encoding() != chunkenc.EncXOR) {
		done, c = c, newOpenMemChunk(x.T)
		app, _ = c.chunk.Appender() // An empty XOR chunk never fails to give one.
	}
	var ch chunkenc.Chunk
	if c != nil {
		ch = c.chunk
	}
	ch, app, cut := segments.AppendSample(ch, app, prev, x)
	if cut {
		done, c = c, newMemChunk(x.T, ch)
	} else {
		c.chunk = ch
	}
	c.maxT = x.T
	c.addCost(sampleCost(x))
	return c, app, done
}
