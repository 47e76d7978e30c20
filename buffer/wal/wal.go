package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Log and Cut on a closed WAL.
var ErrClosed = errors.New("wal closed")

// ErrUnwritable is wrapped by the errors of Log and Cut while the WAL
// cannot write (a write or fsync failed, e.g. the disk is full, and the
// retry has not succeeded yet). The request was not made durable and may
// be retried: the WAL recovers by itself once it can write again.
var ErrUnwritable = errors.New("write-ahead log cannot write")

// WAL is an open write-ahead log. Log, Cut, Truncate, Segments and Size
// may be called concurrently.
type WAL struct {
	dir     string
	opts    Options
	logger  *slog.Logger
	metrics *Metrics

	reqs chan *request // to the writer goroutine
	wg   sync.WaitGroup

	closeMtx sync.RWMutex // guards closed; read-held while sending on reqs
	closed   bool

	truncMtx sync.Mutex // serializes Truncate

	active atomic.Int64          // index of the segment being written
	size   atomic.Int64          // bytes in all segment files
	broken atomic.Pointer[error] // why the WAL cannot write; nil when it can

	writer writer // owned by the writer goroutine

	expect expectations // calls announced by Expect

	// syncFile fsyncs a segment file: (*os.File).Sync, replaced by tests
	// that observe when the writer fsyncs.
	syncFile func(*os.File) error
}

// Open opens the WAL in dir for appending, creating dir if needed. It
// first checks the last existing segment and repairs a torn tail, as
// Replay would (so that a crash tail can never end up in the middle of the
// log), then appends to a new segment after it (or to the last one if that
// is empty). Open does not replay: call Replay for that. It probes with a
// write and an fsync whether the file system takes data: if not (a disk
// already full), the WAL opens unwritable (Err says why) and heals by
// itself as after a failed write.
func Open(logger *slog.Logger, dir string, opts Options) (*WAL, error) {
	return open(logger, dir, opts, (*os.File).Sync)
}

// open is Open with the function that fsyncs segment files.
func open(logger *slog.Logger, dir string, opts Options, syncFile func(*os.File) error) (*WAL, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("wal options: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	w := &WAL{
		dir:      dir,
		opts:     opts,
		logger:   logger,
		metrics:  opts.Metrics,
		reqs:     make(chan *request, 256),
		expect:   expectations{wake: make(chan struct{}, 1)},
		syncFile: syncFile,
	}
	next, size, err := w.recoverTail(segs)
	if err != nil {
		return nil, err
	}
	w.size.Store(size)
	if err := w.writer.init(w, next); err != nil {
		return nil, err
	}
	// A disk that is full already must not look writable until the first
	// write fails: probe now, and start unwritable if the probe fails (the
	// writer retries as after any failure).
	if err := w.writer.probeEmpty(); err != nil {
		w.writer.err = fmt.Errorf("%w: %w", ErrUnwritable, err)
		w.setBroken(w.writer.err)
		w.metrics.WriteErrors.Inc()
		logger.Error("WAL cannot write at start; writes are refused (503) until it can write again, retried every "+opts.RetryInterval.String(),
			"segment", w.writer.index, "err", err)
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// recoverTail repairs a torn tail of the last segment and returns the
// index of the segment to append to and the bytes in all segments.
func (w *WAL) recoverTail(segs []segmentRef) (next int, size int64, err error) {
	if len(segs) == 0 {
		return 0, 0, nil
	}
	last := segs[len(segs)-1]
	repaired, err := scanSegment(w.logger, last, true, nil)
	if err != nil {
		if errors.As(err, new(*CorruptionError)) {
			w.metrics.Corruptions.Inc()
		}
		return 0, 0, err
	}
	if repaired {
		w.metrics.Repairs.Inc()
	}
	next = last.index + 1
	for _, s := range segs {
		st, err := os.Stat(s.path)
		if err != nil {
			return 0, 0, fmt.Errorf("stat segment: %w", err)
		}
		size += st.Size()
		if s == last && st.Size() == 0 {
			next = last.index // Reuse an empty last segment.
		}
	}
	return next, size, nil
}

// Err returns why the WAL cannot write now (wrapping ErrUnwritable), or
// nil when it can.
func (w *WAL) Err() error {
	if p := w.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// setBroken records err as why the WAL cannot write; nil clears it.
func (w *WAL) setBroken(err error) {
	if err == nil {
		w.broken.Store(nil)
		w.metrics.Unwritable.Set(0)
		return
	}
	w.broken.Store(&err)
	w.metrics.Unwritable.Set(1)
}

// Dir returns the directory of the WAL.
func (w *WAL) Dir() string { return w.dir }

// Log appends recs, each an opaque record, and returns once they are
// durable per Options.SyncMode. The records of one call are written
// contiguously and in order; a record is never split across segments.
// Log does not retain recs. It may be called concurrently: concurrent
// callers share one write and one fsync.
//
// An error means the records were not acknowledged. After a failed write
// or fsync, Log fails with an error wrapping ErrUnwritable until the WAL
// has cut the failed frames off and a probe write succeeds (tried before
// each group commit and every Options.RetryInterval); no reopen is needed.
// Frames of a failed request that a roll to a new segment made durable
// before the failure stay in the log, so a replay may apply part of a
// request that was refused: senders retry refused writes, and a retry
// writes the same samples again.
func (w *WAL) Log(recs ...[]byte) error {
	return w.Enqueue(recs...).Wait()
}

// Pending is a Log call handed to the writer goroutine by Enqueue.
type Pending struct {
	r   *request // nil when there was nothing to send or sending failed
	err error
}

// Enqueue does the first half of Log: it hands recs to the writer
// goroutine and returns without waiting. Records of calls that return from
// Enqueue one after the other are in the log in that order, so a caller
// that serialises its Enqueue calls knows the log order before the
// records are durable. Wait must be called exactly once on the result (not on copies of it).
func (w *WAL) Enqueue(recs ...[]byte) Pending {
	if len(recs) == 0 {
		return Pending{}
	}
	r := getRequest(reqLog)
	for _, rec := range recs {
		if len(rec) > MaxRecordSize {
			putRequest(r)
			return Pending{err: fmt.Errorf("log record of %d bytes: %w", len(rec), ErrRecordTooLarge)}
		}
		r.buf = appendFrame(r.buf, rec)
		r.ends = append(r.ends, len(r.buf))
	}
	if err := w.send(r); err != nil {
		putRequest(r)
		return Pending{err: err}
	}
	return Pending{r: r}
}

// Wait returns once the records of the Enqueue call are durable per
// Options.SyncMode, with what Log would have returned.
func (p Pending) Wait() error {
	if p.r == nil {
		return p.err
	}
	<-p.r.done
	err := p.r.err
	putRequest(p.r)
	return err
}

// Cut makes the segment being written read-only (after fsyncing it) and
// starts a new one, returning its index. Everything logged before Cut
// returned is in segments below that index. If the current segment is
// still empty it is kept and its index returned.
func (w *WAL) Cut() (int, error) {
	r := getRequest(reqCut)
	defer putRequest(r)
	if err := w.do(r); err != nil {
		return 0, err
	}
	return r.seg, nil
}

// Truncate removes the segment files with index below first, oldest
// first. first must not be above the segment being written.
func (w *WAL) Truncate(first int) error {
	w.truncMtx.Lock()
	defer w.truncMtx.Unlock()
	if active := int(w.active.Load()); first > active {
		return fmt.Errorf("truncate wal before segment %d: beyond segment %d being written", first, active)
	}
	segs, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	removed := false
	for _, s := range segs {
		if s.index >= first {
			break
		}
		st, err := os.Stat(s.path)
		if err != nil {
			return fmt.Errorf("stat segment: %w", err)
		}
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("remove segment: %w", err)
		}
		w.size.Add(-st.Size())
		removed = true
	}
	if removed {
		return syncDir(w.dir)
	}
	return nil
}

// Segments returns the lowest and highest segment index present in the
// directory, or -1, -1 if there is none.
func (w *WAL) Segments() (first, last int, err error) {
	segs, err := listSegments(w.dir)
	if err != nil {
		return -1, -1, fmt.Errorf("list segments: %w", err)
	}
	if len(segs) == 0 {
		return -1, -1, nil
	}
	return segs[0].index, segs[len(segs)-1].index, nil
}

// Size returns the bytes on disk of all segment files, including records
// written but not yet acknowledged.
func (w *WAL) Size() int64 { return w.size.Load() }

// Close writes and fsyncs everything logged before it and closes the
// segment file. Calls after the first return nil.
func (w *WAL) Close() error {
	w.closeMtx.Lock()
	if w.closed {
		w.closeMtx.Unlock()
		return nil
	}
	w.closed = true
	r := getRequest(reqClose)
	defer putRequest(r)
	w.reqs <- r
	w.closeMtx.Unlock()
	<-r.done
	w.wg.Wait()
	return r.err
}

// do hands r to the writer goroutine and waits for it to be done.
func (w *WAL) do(r *request) error {
	if err := w.send(r); err != nil {
		return err
	}
	<-r.done
	return r.err
}

// send hands r to the writer goroutine.
func (w *WAL) send(r *request) error {
	w.closeMtx.RLock()
	defer w.closeMtx.RUnlock()
	if w.closed {
		return ErrClosed
	}
	w.reqs <- r
	return nil
}
