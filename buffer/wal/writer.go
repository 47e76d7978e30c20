package wal

import (
	"fmt"
	"os"
	"sync"
	"time"
)

const (
	maxBatch       = 1024    // requests taken from the queue per group commit at most
	maxWriteBuf    = 4 << 20 // bytes buffered before a write(2) within one batch
	maxPooledBytes = 4 << 20 // request buffers above this are not pooled
	// maxUnsynced bounds the bytes acknowledged but not yet fsynced in
	// SyncInterval mode (the copy the writer keeps of them): a commit
	// that would leave more fsyncs before it acknowledges.
	maxUnsynced = 32 << 20
)

type reqKind int

const (
	reqLog reqKind = iota
	reqCut
	reqClose
)

// request is one call into the writer goroutine. The caller owns it until
// it sends it and again once done is signalled.
type request struct {
	kind reqKind
	buf  []byte // reqLog: frames of the records, back to back
	ends []int  // reqLog: end offset in buf of each frame
	seg  int    // reqCut: index returned
	err  error
	done chan struct{} // capacity 1; signalled once per use
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func getRequest(kind reqKind) *request {
	r := requestPool.Get().(*request)
	r.kind = kind
	return r
}

func putRequest(r *request) {
	if cap(r.buf) > maxPooledBytes {
		return
	}
	r.buf, r.ends, r.seg, r.err = r.buf[:0], r.ends[:0], 0, nil
	requestPool.Put(r)
}

// writer is the state of the writer goroutine; nothing else touches it
// after Open.
type writer struct {
	w       *WAL
	f       *os.File   // segment being written
	index   int        // its index
	off     int64      // bytes written to f
	buf     []byte     // frames not yet written to f
	waiting []*request // requests whose frames are in buf or f but not yet acknowledged
	dirty   bool       // f has writes not yet fsynced
	good    int64      // bytes of f that hold acknowledged (or synced) frames only
	synced  int64      // bytes of f that an fsync made durable
	// unsynced is a copy of f's bytes from synced to off, kept in
	// SyncInterval mode only, where frames are acknowledged before an
	// fsync. After a failed fsync Linux may mark the unwritten pages clean
	// (fsyncgate): a later fsync then succeeds without writing them, and
	// the page cache may drop them. So the file cannot be trusted past
	// synced, and recover writes the acknowledged part of this copy again.
	unsynced []byte
	// lostSync is set when an fsync of f failed: the bytes of f past
	// synced may be lost whatever later fsyncs return, until recover has
	// written them again from unsynced.
	lostSync bool
	// lastSync is how long the last fsync of a segment file took: the
	// longest a commit waits for calls announced by Expect.
	lastSync time.Duration
	// err is set by a failed write or fsync: until recover succeeds every
	// request fails with it. recover runs before each batch and every
	// Options.RetryInterval, so the WAL heals by itself once the cause
	// (typically a full disk) is gone.
	err error
}

func (wr *writer) init(w *WAL, index int) error {
	wr.w = w
	return wr.openSegment(index)
}

// run is the writer goroutine: it takes whatever requests are queued,
// writes their frames with one write(2), fsyncs once, and acknowledges
// them all (group commit).
func (w *WAL) run() {
	defer w.wg.Done()
	wr := &w.writer
	var tick <-chan time.Time
	if w.opts.SyncMode == SyncInterval {
		t := time.NewTicker(w.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	retry := time.NewTicker(w.opts.RetryInterval)
	defer retry.Stop()
	batch := make([]*request, 0, maxBatch)
	var expectTimer *time.Timer // waitExpected's, made at its first use
	for {
		select {
		case <-retry.C:
			if wr.err != nil {
				wr.recover()
			}
		case r := <-w.reqs:
			batch = drain(w.reqs, append(batch[:0], r))
			batch = w.waitExpected(batch, &expectTimer)
			if wr.process(batch) {
				return
			}
			clear(batch)
		case <-tick:
			if wr.err == nil && wr.dirty {
				if err := wr.sync(); err != nil {
					wr.fail(err)
				}
			}
		}
	}
}

// process handles a batch in order and reports whether it closed the WAL.
func (wr *writer) process(batch []*request) (closed bool) {
	if wr.err != nil {
		wr.recover()
	}
	for _, r := range batch {
		switch r.kind {
		case reqLog:
			wr.append(r)
		case reqCut:
			wr.commit(true)
			r.seg, r.err = wr.cut()
			r.done <- struct{}{}
		case reqClose:
			wr.commit(true)
			r.err = wr.close()
			r.done <- struct{}{}
			closed = true
		}
	}
	wr.commit(wr.w.opts.SyncMode == SyncAlways)
	return closed
}

// append buffers r's frames, rolling to a new segment where the next
// frame would make the current one exceed the segment size.
func (wr *writer) append(r *request) {
	if wr.err != nil {
		r.err = wr.err
		r.done <- struct{}{}
		return
	}
	wr.waiting = append(wr.waiting, r)
	limit := wr.w.opts.SegmentSize
	if wr.off+int64(len(wr.buf))+int64(len(r.buf)) <= limit {
		wr.buf = append(wr.buf, r.buf...)
	} else {
		start := 0
		for _, end := range r.ends {
			used := wr.off + int64(len(wr.buf))
			if used > 0 && used+int64(end-start) > limit {
				if err := wr.roll(); err != nil {
					wr.fail(err)
					return
				}
			}
			wr.buf = append(wr.buf, r.buf[start:end]...)
			start = end
		}
	}
	if len(wr.buf) >= maxWriteBuf {
		if err := wr.write(); err != nil {
			wr.fail(err)
		}
	}
}

// commit writes buffered frames, fsyncs if sync, and acknowledges the
// waiting requests.
func (wr *writer) commit(sync bool) {
	if wr.off+int64(len(wr.buf))-wr.synced > maxUnsynced {
		sync = true // Bound the copy kept of unsynced bytes.
	}
	if wr.err == nil {
		err := wr.write()
		if err == nil && sync && wr.dirty {
			err = wr.sync()
		}
		if err != nil {
			wr.fail(err) // Fails and clears the waiting requests.
		}
	}
	if len(wr.waiting) == 0 {
		return
	}
	if wr.err == nil && !wr.dirty {
		wr.good = wr.off
	} else if wr.err == nil && !wr.w.opts.SyncMode.syncsBeforeAck() {
		wr.good = wr.off // Acknowledged after write(2) in this mode.
	}
	m := wr.w.metrics
	m.CommitSize.Observe(float64(len(wr.waiting)))
	for _, r := range wr.waiting {
		if wr.err == nil {
			m.RecordsWritten.Add(float64(len(r.ends)))
		}
		r.err = wr.err
		r.done <- struct{}{}
	}
	clear(wr.waiting)
	wr.waiting = wr.waiting[:0]
}

// fail makes the WAL unwritable until recover succeeds and fails every
// waiting request with err, which wraps ErrUnwritable.
func (wr *writer) fail(err error) {
	wr.w.metrics.WriteErrors.Inc()
	if wr.err == nil {
		wr.w.logger.Error("WAL write failed; writes are refused (503) until it can write again, retried every "+wr.w.opts.RetryInterval.String(),
			"segment", wr.index, "err", err)
	}
	err = fmt.Errorf("%w: %w", ErrUnwritable, err)
	wr.err = err
	wr.w.setBroken(err)
	wr.buf = wr.buf[:0]
	for _, r := range wr.waiting {
		r.err = err
		r.done <- struct{}{}
	}
	clear(wr.waiting)
	wr.waiting = wr.waiting[:0]
}

// write writes the buffered frames to the segment file.
func (wr *writer) write() error {
	if len(wr.buf) == 0 {
		return nil
	}
	n, err := wr.f.Write(wr.buf)
	if !wr.w.opts.SyncMode.syncsBeforeAck() {
		wr.unsynced = append(wr.unsynced, wr.buf[:n]...)
	}
	wr.off += int64(n)
	wr.w.size.Add(int64(n))
	wr.w.metrics.BytesWritten.Add(float64(n))
	wr.dirty = wr.dirty || n > 0
	if cap(wr.buf) > 2*maxWriteBuf {
		wr.buf = nil // Do not keep a buffer grown by one huge record.
	} else {
		wr.buf = wr.buf[:0]
	}
	if err != nil {
		return fmt.Errorf("write segment %d: %w", wr.index, err)
	}
	return nil
}

// sync fsyncs the segment file.
func (wr *writer) sync() error {
	start := time.Now()
	err := wr.w.syncFile(wr.f)
	took := time.Since(start)
	wr.lastSync = took
	m := wr.w.metrics
	m.FsyncDuration.Observe(took.Seconds())
	m.Fsyncs.Inc()
	if err != nil {
		wr.lostSync = true
		return fmt.Errorf("sync segment %d: %w", wr.index, err)
	}
	if !wr.lostSync {
		wr.markSynced(wr.off)
	}
	wr.dirty = false
	return nil
}

// markSynced records that f's first n bytes are durable and drops the
// copy of them.
func (wr *writer) markSynced(n int64) {
	wr.synced = n
	if cap(wr.unsynced) > 2*maxWriteBuf {
		wr.unsynced = nil
	} else {
		wr.unsynced = wr.unsynced[:0]
	}
}

// roll writes and fsyncs the current segment, closes it and opens the next.
func (wr *writer) roll() error {
	if err := wr.write(); err != nil {
		return err
	}
	if wr.dirty {
		if err := wr.sync(); err != nil {
			return err
		}
	}
	if err := wr.f.Close(); err != nil {
		return fmt.Errorf("close segment %d: %w", wr.index, err)
	}
	wr.f = nil
	return wr.openSegment(wr.index + 1)
}

// cut rolls to a new segment unless the current one is empty, and returns
// the index of the segment now being written.
func (wr *writer) cut() (int, error) {
	if wr.err != nil {
		return 0, wr.err
	}
	if wr.off > 0 {
		if err := wr.roll(); err != nil {
			wr.fail(err)
			return 0, err
		}
	}
	return wr.index, nil
}

// close closes the segment file; commit(true) has already fsynced it.
// After a failed write or fsync that recover could not undo, close still
// succeeds when restore succeeds: everything acknowledged is then
// durable, and nothing more is.
func (wr *writer) close() error {
	if wr.f == nil {
		return wr.err
	}
	if wr.err != nil {
		if err := wr.restore(); err != nil {
			_ = wr.f.Close()
			wr.f = nil
			return wr.err
		}
	}
	err := wr.f.Close()
	wr.f = nil
	if err != nil {
		return fmt.Errorf("close segment %d: %w", wr.index, err)
	}
	return nil
}

// openSegment creates segment index (or opens it if it exists empty) and
// makes its directory entry durable.
func (wr *writer) openSegment(index int) error {
	path := segmentPath(wr.w.dir, index)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() != 0 {
		err = fmt.Errorf("segment %s exists and is not empty", path)
	}
	if err == nil {
		err = syncDir(wr.w.dir)
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open segment %d: %w", index, err)
	}
	wr.f, wr.index, wr.off, wr.good, wr.dirty = f, index, 0, 0, false
	wr.lostSync = false
	wr.markSynced(0)
	wr.w.active.Store(int64(index))
	wr.w.metrics.Segment.Set(float64(index))
	return nil
}

// probeSize is how many bytes recover writes (and removes) to check that
// the file system takes writes again.
const probeSize = 64 << 10

// recover tries to make the WAL writable after a failure: it cuts the
// segment back to its acknowledged frames (so the frames of failed
// requests are not replayed), writes again and fsyncs the acknowledged
// frames a failed fsync may have lost (see writer.unsynced), opens the next segment if a roll failed
// half way, and checks with a probe write and fsync that the file system
// takes data again. On success the WAL accepts writes; on failure it stays
// unwritable and recover runs again later.
func (wr *writer) recover() {
	err := wr.tryRecover()
	if err != nil {
		wr.w.metrics.WriteErrors.Inc()
		wr.err = fmt.Errorf("%w: %w", ErrUnwritable, err)
		wr.w.setBroken(wr.err)
		return
	}
	wr.w.logger.Info("WAL writable again; accepting writes", "segment", wr.index, "offset", wr.off)
	wr.err = nil
	wr.w.setBroken(nil)
}

func (wr *writer) tryRecover() error {
	if wr.f == nil {
		// A roll closed the old segment (fsynced) and failed to open the
		// next one.
		if err := wr.openSegment(wr.index + 1); err != nil {
			return err
		}
	}
	if err := wr.restore(); err != nil {
		return err
	}
	probe := make([]byte, probeSize)
	n, werr := wr.f.Write(probe)
	wr.w.size.Add(int64(n)) // truncateToGood takes the probe off again
	serr := wr.w.syncFile(wr.f)
	// Remove the probe whatever happened; a crash before this leaves a
	// zero-filled tail, which replay cuts off as torn.
	if err := wr.truncateToGood(); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("probe write segment %d: %w", wr.index, werr)
	}
	if serr != nil {
		return fmt.Errorf("probe sync segment %d: %w", wr.index, serr)
	}
	return nil
}

// probeEmpty is the probe of recover for the empty segment Open starts
// with: a write and an fsync, then the file cut back to empty. Its fsyncs
// bypass the sync hook, which observes the writer's own.
func (wr *writer) probeEmpty() error {
	_, werr := wr.f.Write(make([]byte, probeSize))
	serr := wr.f.Sync()
	terr := wr.f.Truncate(0)
	if terr == nil {
		terr = wr.f.Sync()
	}
	switch {
	case werr != nil:
		return fmt.Errorf("probe write segment %d: %w", wr.index, werr)
	case serr != nil:
		return fmt.Errorf("probe sync segment %d: %w", wr.index, serr)
	case terr != nil:
		return fmt.Errorf("cut probe from segment %d: %w", wr.index, terr)
	}
	return nil
}

// truncateToGood cuts the segment file back to the frames acknowledged,
// dropping what failed requests wrote, and fsyncs it.
func (wr *writer) truncateToGood() error {
	st, err := wr.f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %d: %w", wr.index, err)
	}
	if st.Size() != wr.good {
		if err := wr.f.Truncate(wr.good); err != nil {
			return fmt.Errorf("truncate segment %d to %d: %w", wr.index, wr.good, err)
		}
		wr.w.size.Add(wr.good - st.Size())
	}
	if err := wr.w.syncFile(wr.f); err != nil {
		wr.lostSync = true
		return fmt.Errorf("sync segment %d: %w", wr.index, err)
	}
	wr.off, wr.dirty = wr.good, false
	if wr.synced > wr.good {
		wr.synced, wr.unsynced = wr.good, wr.unsynced[:0]
	} else if n := wr.good - wr.synced; int64(len(wr.unsynced)) > n {
		wr.unsynced = wr.unsynced[:n]
	}
	if !wr.lostSync {
		wr.markSynced(wr.good)
	}
	return nil
}

// restore makes the segment file hold exactly its acknowledged frames,
// durably: it cuts off what failed requests wrote and, after a failed
// fsync, writes the acknowledged bytes past the last good fsync again
// from the writer's copy (marking their pages dirty, so that the fsync
// that follows really writes them) and fsyncs them.
func (wr *writer) restore() error {
	if err := wr.truncateToGood(); err != nil {
		return err
	}
	if !wr.lostSync {
		return nil
	}
	// A second descriptor: f appends, and WriteAt refuses O_APPEND files.
	g, err := os.OpenFile(wr.f.Name(), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reopen segment %d: %w", wr.index, err)
	}
	_, err = g.WriteAt(wr.unsynced, wr.synced)
	if err == nil {
		err = wr.w.syncFile(g)
	}
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write again the frames of segment %d after a failed fsync: %w", wr.index, err)
	}
	wr.lostSync = false
	wr.markSynced(wr.good)
	return nil
}
