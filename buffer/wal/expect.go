package wal

import (
	"sync/atomic"
	"time"
)

// Expected is a Log or Enqueue call announced by Expect and not yet made.
// The zero value announces nothing; Done on it does nothing.
type Expected struct {
	e   *expectations
	gen uint32
}

// Expect announces a Log or Enqueue call that the caller is about to
// make, so that a group commit (SyncAlways) that starts meanwhile may
// wait for it rather than fsync without it: concurrent writers then
// share more fsyncs. The caller must call Done exactly once, right after
// its Enqueue (or Log) has handed the records over, or as soon as it
// knows that it will not make the call or must first wait for anything
// that may itself wait for a commit (a lock held by a Log caller, say):
// an outstanding Expected holds commits back.
//
// A commit never waits on a timer alone: it waits only while a call
// announced before it started is outstanding, and at most about as long
// as its fsync took the last time (Options.ExpectWait; waiting longer
// would delay the calls it holds and never give the one it waits for its
// fsync sooner than a commit of its own). In SyncInterval mode Expect
// announces nothing.
func (w *WAL) Expect() Expected {
	if !w.opts.SyncMode.syncsBeforeAck() {
		return Expected{}
	}
	e := &w.expect
	g := e.gen.Load() & 1
	e.n[g].Add(1)
	return Expected{e: e, gen: g}
}

// Done ends the announcement: see Expect.
func (x Expected) Done() {
	if x.e == nil {
		return
	}
	if x.e.n[x.gen].Add(-1) == 0 && x.e.waiting.Load() {
		select {
		case x.e.wake <- struct{}{}:
		default:
		}
	}
}

// expectations counts the calls announced by Expect in two generations:
// a commit that waits flips the generation, and then waits only for the
// calls of the generation before, so later announcements cannot hold it
// back for ever.
type expectations struct {
	gen     atomic.Uint32
	n       [2]atomic.Int64 // outstanding announcements, by generation parity
	waiting atomic.Bool     // the writer waits for n[gen^1] to reach zero
	wake    chan struct{}   // capacity 1: Done brought a waited count to zero
}

// maxExpectWait bounds a commit's wait for announced calls, whatever the
// last fsync took, unless Options.ExpectWait says otherwise.
const maxExpectWait = 10 * time.Millisecond

// waitExpected is called by the writer goroutine with the requests it took
// for a commit. While a call announced before it is outstanding, it waits
// for more requests (appending them to batch), for at most the time of
// the last fsync; it returns the batch with every request queued by then.
// It does not wait when the batch holds anything but Log requests, or
// when the mode acknowledges before an fsync.
func (w *WAL) waitExpected(batch []*request, timer **time.Timer) []*request {
	e := &w.expect
	if !w.opts.SyncMode.syncsBeforeAck() || w.writer.err != nil {
		return batch
	}
	for _, r := range batch {
		if r.kind != reqLog {
			return batch
		}
	}
	old := (e.gen.Add(1) - 1) & 1
	if e.n[old].Load() == 0 {
		return batch
	}
	d := w.opts.ExpectWait
	if d == 0 {
		d = min(w.writer.lastSync, maxExpectWait)
	}
	if d <= 0 {
		return batch
	}
	e.waiting.Store(true)
	defer e.waiting.Store(false)
	// Checked again after waiting is set: a Done that saw it unset has
	// brought the count to zero before this load.
	if e.n[old].Load() == 0 {
		return drain(w.reqs, batch)
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		(*timer).Reset(d)
	}
	defer (*timer).Stop()
	for e.n[old].Load() > 0 && len(batch) < maxBatch {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
			if r.kind != reqLog {
				return batch // A cut or a close: commit now.
			}
		case <-e.wake:
		case <-(*timer).C:
			return drain(w.reqs, batch)
		}
	}
	// The announced calls sent their requests before their Done.
	return drain(w.reqs, batch)
}

// drain appends to batch the requests queued on reqs, up to maxBatch.
func drain(reqs chan *request, batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}
