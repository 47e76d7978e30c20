package buffer

import (
	"context"
	"sync"
)

// readers tracks the reads in flight over the head and the segments (a
// querier's lifetime), by the epoch they started in. A flush publishes its
// segments, then starts a new epoch and waits for the reads of earlier
// epochs to end before it drops the flushed data from the head: a read that
// started before the segments were visible may have looked at the segment
// set before the publish and at the head after the drop, and would miss the
// data entirely. A read of the new epoch finds the segments. The flush is
// the only one that waits; reads never wait for a flush.
type readers struct {
	mtx     sync.Mutex     // mtx guards everything below.
	epoch   uint64         // the epoch new reads start in
	active  map[uint64]int // reads in flight, by the epoch they started in
	changed chan struct{}  // closed (and replaced) when a read ends
}

func newReaders() *readers {
	return &readers{active: map[uint64]int{}, changed: make(chan struct{})}
}

// start registers a read and returns the function that ends it; calling
// that more than once ends it once.
func (r *readers) start() (done func()) {
	r.mtx.Lock()
	e := r.epoch
	r.active[e]++
	r.mtx.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mtx.Lock()
			if r.active[e]--; r.active[e] == 0 {
				delete(r.active, e)
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mtx.Unlock()
		})
	}
}

// advance starts a new epoch and returns it.
func (r *readers) advance() uint64 {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.epoch++
	return r.epoch
}

// waitBefore returns once no read that started in an epoch before epoch is
// in flight, or with ctx's error.
func (r *readers) waitBefore(ctx context.Context, epoch uint64) error {
	for {
		r.mtx.Lock()
		pending := false
		for e := range r.active {
			if e < epoch {
				pending = true
				break
			}
		}
		ch := r.changed
		r.mtx.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inFlight returns the number of reads in flight.
func (r *readers) inFlight() int {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	n := 0
	for _, c := range r.active {
		n += c
	}
	return n
}

// StartRead registers a read of the head that is combined with reads of
// the segments a flush publishes into (a querier over both), and returns
// the function that ends it, which must be called (more calls do nothing).
// While the read is in flight, no flush drops from the head data it
// flushed after the read started, so the read finds every sample in the
// head or in a segment, whichever it looks at first. Reads that only look
// at the head need not register.
func (h *Head) StartRead() (done func()) { return h.reads.start() }
