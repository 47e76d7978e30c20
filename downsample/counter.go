package downsample

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/segments"
)

// counter tracks a counter's value adjusted for resets, the way PromQL's
// rate and increase see it: a value lower than the one before is a reset
// after which the counter restarted from zero.
type counter struct {
	ok     bool    // a value has been seen
	last   float64 // the last raw value
	offset float64 // added to raw values: the values before each reset
	adj    float64 // the last adjusted value

	// pending: continue from carryAdj at the next value, counting no
	// increase between the previous window and it (the raw value the
	// previous window ended on is unknown).
	pending  bool
	carryAdj float64
}

func (c *counter) observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	if !c.ok {
		c.ok, c.last, c.offset, c.adj = true, v, 0, v
		if c.pending {
			c.offset, c.adj, c.pending = c.carryAdj-v, c.carryAdj, false
		}
		return
	}
	if v < c.last {
		c.offset += c.last
	}
	c.last = v
	// With v >= 0 the adjusted value cannot go down, except by rounding of
	// v+offset, which must not look like a reset to PromQL.
	if a := v + c.offset; a > c.adj || v < 0 || math.IsNaN(c.adj) {
		c.adj = a
	}
}

func (c *counter) value() float64 {
	switch {
	case c.ok:
		return c.adj
	case c.pending:
		return c.carryAdj
	}
	return math.NaN()
}

// NewCounterIterator returns the raw samples of it that come after t as
// counter aggregate values: adjusted for resets and continuing adj, the
// value of a counter chunk at its bucket end t. A querier uses it where a
// rollup's counter chunk ends and raw data goes on (the newest data is not
// rolled up yet), since raw values and adjusted values differ after a
// reset and the seam would look like one to rate.
//
// it should start at t-resolution+1, the start of the bucket that ends at
// t: its last sample at or before t is the raw value that adj stands for,
// so whether the counter reset right after t is known. When it has no such
// sample, the first sample after t continues adj with no increase. Stale
// markers and NaN samples are dropped; the samples must increase in time.
// Seek moves forward only.
func NewCounterIterator(it chunkenc.Iterator, t int64, adj float64) chunkenc.Iterator {
	return &counterIterator{it: it, t: t, cnt: counter{pending: true, carryAdj: adj}}
}

// NewAdjustedIterator returns the raw samples of it adjusted for resets,
// starting at the first raw value, as a counter chunk starts for a series
// that the rollup of the window before does not hold. Stale markers and NaN
// samples are dropped; Seek moves forward only.
func NewAdjustedIterator(it chunkenc.Iterator) chunkenc.Iterator {
	return &counterIterator{it: it, t: math.MinInt64}
}

var _ chunkenc.Iterator = (*counterIterator)(nil)

type counterIterator struct {
	segments.FloatOnly
	it   chunkenc.Iterator
	t    int64
	cnt  counter
	cur  int64 // timestamp of the current sample
	has  bool  // positioned on a sample
	done bool
	err  error
}

func (c *counterIterator) Next() chunkenc.ValueType {
	for !c.done {
		vt := c.it.Next()
		if vt == chunkenc.ValNone {
			c.done = true
			break
		}
		if vt != chunkenc.ValFloat {
			c.done, c.err = true, errNotFloat(vt)
			break
		}
		t, v := c.it.At()
		if value.IsStaleNaN(v) || math.IsNaN(v) {
			continue
		}
		if t <= c.t {
			// The raw value the carried one stands for.
			c.cnt = counter{ok: true, last: v, offset: c.cnt.carryAdj - v, adj: c.cnt.carryAdj, carryAdj: c.cnt.carryAdj}
			continue
		}
		c.cnt.observe(v)
		c.cur, c.has = t, true
		return chunkenc.ValFloat
	}
	c.has = false
	return chunkenc.ValNone
}

func (c *counterIterator) Seek(t int64) chunkenc.ValueType {
	return segments.SeekFloatByNext(c, c.has, t)
}

func (c *counterIterator) At() (int64, float64) { return c.cur, c.cnt.adj }
func (c *counterIterator) AtT() int64           { return c.cur }
func (c *counterIterator) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.it.Err()
}

func errNotFloat(vt chunkenc.ValueType) error {
	return fmt.Errorf("%s sample: only float counters can be adjusted", vt)
}
