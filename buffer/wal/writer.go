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
	err     error      // sticky: after a failed write or fsync nothing more is written
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
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		drain:
			for len(batch) < maxBatch {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
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

// fail makes err sticky and fails every waiting request with it.
func (wr *writer) fail(err error) {
	wr.w.metrics.WriteErrors.Inc()
	wr.w.logger.Error("WAL write failed; the WAL refuses further writes until reopened", "segment", wr.index, "err", err)
	wr.err = err
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
	err := wr.f.Sync()
	m := wr.w.metrics
	m.FsyncDuration.Observe(time.Since(start).Seconds())
	m.Fsyncs.Inc()
	if err != nil {
		return fmt.Errorf("sync segment %d: %w", wr.index, err)
	}
	wr.dirty = false
	return nil
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
func (wr *writer) close() error {
	if wr.f == nil {
		return wr.err
	}
	err := wr.f.Close()
	wr.f = nil
	if wr.err != nil {
		return wr.err
	}
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
	wr.f, wr.index, wr.off = f, index, 0
	wr.w.active.Store(int64(index))
	wr.w.metrics.Segment.Set(float64(index))
	return nil
}
