package gen

import (
	"errors"
	"fmt"
	"time"
)

// Schedule says which timestamps a Stream covers and how it cuts them into
// batches.
type Schedule struct {
	// Start is the time of step 0. It is ignored when Clock is set.
	Start time.Time
	// Interval is the time between steps (the scrape interval); counters
	// grow by their rate times Interval at every step. It must be at least
	// a millisecond.
	Interval time.Duration
	// Steps is the number of steps to generate; zero means no end.
	Steps int
	// Clock, when set, stamps each step with the time Clock returns when
	// the step is generated (live mode), kept strictly increasing by at
	// least a millisecond per step. Nil stamps step i with Start + i ×
	// Interval (backfill).
	Clock func() time.Time
	// BatchSamples is the number of samples a batch aims at; a batch never
	// splits a group, so it may be off by a group's fields. It must be
	// positive.
	BatchSamples int
	// SamplesPerSeries is the number of consecutive steps of each series in
	// a batch. Zero picks BatchSamples / (series in the stream), at least 1,
	// so that a batch holds every series of the stream when it can.
	SamplesPerSeries int
}

// Validate reports the first field out of range.
func (s Schedule) Validate() error {
	switch {
	case s.Interval < time.Millisecond:
		return fmt.Errorf("interval %s: must be at least 1ms", s.Interval)
	case s.Steps < 0:
		return errors.New("steps must not be negative")
	case s.BatchSamples <= 0:
		return errors.New("batch samples must be positive")
	case s.SamplesPerSeries < 0:
		return errors.New("samples per series must not be negative")
	}
	return nil
}

// Batch is a block of samples: the same timestamps for each of its groups.
// Writers reuse batches: Stream.Next overwrites every field.
type Batch struct {
	Groups []*Group
	// Times are the timestamps in milliseconds, ascending, shared by every
	// series of the batch.
	Times []int64
	// FirstStep is the step index of Times[0].
	FirstStep int
	// Values holds, for group i, field f and timestamp t, the value at
	// Offsets[i] + f*len(Times) + t: series after series, each series'
	// samples together.
	Values  []float64
	Offsets []int
	// Hists holds, where a field is a NativeHistogram, the histogram whose count
	// Values holds, at the same index; it is empty when no group of the
	// batch has histograms.
	Hists []Histogram
}

// Samples is the number of samples in the batch.
func (b *Batch) Samples() int { return len(b.Values) }

// Series is the number of series in the batch.
func (b *Batch) Series() int { return len(b.Values) / max(1, len(b.Times)) }

// Value returns the value of group i, field f, at timestamp index t.
func (b *Batch) Value(i, f, t int) float64 { return b.Values[b.Offsets[i]+f*len(b.Times)+t] }

// Stream generates the samples of a shard of the fleet in time order:
// block after block of SamplesPerSeries steps, and within a block, batches
// of groups. A series only appears in its stream, in time order, like a
// remote-write shard of a Prometheus agent.
//
// A Stream is not safe for concurrent use; streams of different shards of
// one Generator may run concurrently, two streams of one shard must not.
type Stream struct {
	gen    *Generator
	groups []*Group
	series int
	sch    Schedule
	k      int // steps per block

	block    int     // first step of the current block
	times    []int64 // timestamps of the current block
	next     int     // next group of the current block
	lastTime int64
	out      []float64
}

// Stream returns the stream of shard (0 ≤ shard < shards): the groups whose
// index modulo shards is shard. A shard with no group yields nothing.
func (g *Generator) Stream(shard, shards int, sch Schedule) (*Stream, error) {
	if err := sch.Validate(); err != nil {
		return nil, err
	}
	if shards <= 0 || shard < 0 || shard >= shards {
		return nil, fmt.Errorf("shard %d of %d: out of range", shard, shards)
	}
	s := &Stream{gen: g, sch: sch, lastTime: -1 << 62}
	for i := shard; i < len(g.groups); i += shards {
		s.groups = append(s.groups, g.groups[i])
		s.series += len(g.groups[i].Family.Fields)
	}
	s.k = sch.SamplesPerSeries
	if s.k == 0 {
		s.k = max(1, sch.BatchSamples/max(1, s.series))
	}
	return s, nil
}

// NumSeries is the number of series in the stream.
func (s *Stream) NumSeries() int { return s.series }

// Total is the number of samples the stream yields in all, or -1 when the
// schedule has no end.
func (s *Stream) Total() int64 {
	if s.sch.Steps == 0 {
		return -1
	}
	return int64(s.series) * int64(s.sch.Steps)
}

// Next fills b with the next batch and reports whether there was one.
func (s *Stream) Next(b *Batch) bool {
	if len(s.groups) == 0 || (s.sch.Steps > 0 && s.block >= s.sch.Steps) {
		return false
	}
	if s.next == 0 {
		s.startBlock()
	}
	n := len(s.times)
	// Take groups until the batch is full; at least one.
	end, samples := s.next, 0
	for end < len(s.groups) && (end == s.next || samples+len(s.groups[end].Family.Fields)*n <= s.sch.BatchSamples) {
		samples += len(s.groups[end].Family.Fields) * n
		end++
	}
	b.Groups = append(b.Groups[:0], s.groups[s.next:end]...)
	b.Times = append(b.Times[:0], s.times...)
	b.FirstStep = s.block
	b.Offsets = b.Offsets[:0]
	if cap(b.Values) < samples {
		b.Values = make([]float64, samples)
	}
	b.Values = b.Values[:samples]
	b.Hists = b.Hists[:0]
	for _, gr := range b.Groups {
		if gr.Family.HasHistograms() {
			if cap(b.Hists) < samples {
				b.Hists = append(b.Hists[:cap(b.Hists)], make([]Histogram, samples-cap(b.Hists))...)
			}
			b.Hists = b.Hists[:samples]
			break
		}
	}
	dt := s.sch.Interval.Seconds()
	off := 0
	for _, gr := range b.Groups {
		b.Offsets = append(b.Offsets, off)
		nf := len(gr.Family.Fields)
		integer := s.gen.opts.IntegerGauges
		out := s.out[:nf]
		for t := range n {
			reset := s.gen.rebooted(gr.HostIdx, s.block+t)
			if gr.Family.HasHistograms() {
				h := &b.Hists[off+t] // a histogram family has one field
				gr.Family.histStep(gr.rng, gr.state, dt, reset, h)
				b.Values[off+t] = float64(h.Count)
				continue
			}
			gr.Family.step(gr.rng, gr.state, dt, reset, integer, out)
			for f, v := range out {
				b.Values[off+f*n+t] = v
			}
		}
		off += nf * n
	}
	s.next = end
	if end == len(s.groups) {
		s.next = 0
		s.block += n
	}
	return true
}

func (s *Stream) startBlock() {
	n := s.k
	if s.sch.Steps > 0 {
		n = min(n, s.sch.Steps-s.block)
	}
	s.times = s.times[:0]
	if len(s.out) == 0 {
		s.out = make([]float64, 16)
	}
	if s.sch.Clock == nil {
		start, iv := s.sch.Start.UnixMilli(), s.sch.Interval.Milliseconds()
		for i := range n {
			s.times = append(s.times, start+int64(s.block+i)*iv)
		}
		return
	}
	now := s.sch.Clock().UnixMilli()
	for range n {
		t := max(now, s.lastTime+1)
		s.times = append(s.times, t)
		s.lastTime = t
	}
}
