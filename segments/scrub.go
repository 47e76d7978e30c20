package segments

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// DefaultScrubBytesPerSecond is the scrub rate the server uses unless
	// configured: a pass over 100 GiB of segments takes about 7 hours.
	DefaultScrubBytesPerSecond = 4 << 20
	// DefaultScrubPause is the wait between two passes over the set when
	// ScrubOptions.Pause is 0.
	DefaultScrubPause = time.Hour
	// scrubPiece is how many bytes the scrub checksums between two checks
	// of the rate and of Stop, holding the segment meanwhile.
	scrubPiece = 256 << 10
)

// ScrubOptions configure a Scrubber. The zero value disables the scrub.
type ScrubOptions struct {
	// BytesPerSecond is the most file bytes checksummed per second; 0
	// disables the scrub.
	BytesPerSecond int64
	// Pause is the wait before the first pass over every segment of the
	// set and between two passes; 0 means DefaultScrubPause.
	Pause time.Duration
}

// Validate reports the first invalid field.
func (o ScrubOptions) Validate() error {
	if o.BytesPerSecond < 0 {
		return fmt.Errorf("scrub rate %d bytes/s: must not be negative", o.BytesPerSecond)
	}
	if o.Pause < 0 {
		return fmt.Errorf("scrub pause %s: must not be negative", o.Pause)
	}
	return nil
}

// ScrubMetrics are the scrub's collectors.
type ScrubMetrics struct {
	ScrubbedBytes prometheus.Counter // file bytes checksummed
	Corrupt       prometheus.Counter // damaged segments found (then quarantined)
	Passes        prometheus.Counter // passes over the whole set finished
}

// NewScrubMetrics creates the scrub's collectors and registers them with
// reg (nil: not registered).
func NewScrubMetrics(reg prometheus.Registerer) *ScrubMetrics {
	m := &ScrubMetrics{
		ScrubbedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_segments_scrubbed_bytes_total",
			Help: "Total bytes of published segment files checked against their CRC32C by the background scrub.",
		}),
		Corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_segments_scrub_corrupt_total",
			Help: "Total published segments the background scrub found damaged and quarantined.",
		}),
		Passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_segments_scrub_passes_total",
			Help: "Total passes of the background scrub over every published segment.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ScrubbedBytes, m.Corrupt, m.Passes)
	}
	return m
}

// Scrubber checks, in the background and at a bounded rate, every file of
// every segment of a Set against the CRC32C that meta.json records (the
// check OpenAll does at start), so that damage that happens after the start
// is found before a query meets it. A damaged segment is taken out of the
// set with Set.Quarantine (moved to quarantine/ once its readers are done,
// with an ERROR log) and counted. Start and Stop are called by the owner.
type Scrubber struct {
	logger  *slog.Logger
	set     *Set
	opts    ScrubOptions
	metrics *ScrubMetrics
	now     func() time.Time
	sleep   func(time.Duration, <-chan struct{}) bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewScrubber returns a scrubber of set; m may be nil for unregistered
// metrics.
func NewScrubber(logger *slog.Logger, set *Set, opts ScrubOptions, m *ScrubMetrics) *Scrubber {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewScrubMetrics(nil)
	}
	if opts.Pause == 0 {
		opts.Pause = DefaultScrubPause
	}
	return &Scrubber{logger: logger, set: set, opts: opts, metrics: m, now: time.Now, sleep: sleepOrStop, stop: make(chan struct{})}
}

// Start starts the background loop, unless the rate is 0.
func (s *Scrubber) Start() {
	if s.opts.BytesPerSecond <= 0 {
		return
	}
	s.wg.Add(1)
	go s.run()
}

// Stop ends the loop and waits for it; the scrub holds no segment after.
func (s *Scrubber) Stop() {
	close(s.stop)
	s.wg.Wait()
}

// run is the background loop. The first pass starts after one pause:
// OpenAll has just checked every segment.
func (s *Scrubber) run() {
	defer s.wg.Done()
	for {
		if !s.sleep(s.opts.Pause, s.stop) {
			return
		}
		start := s.now()
		for _, info := range s.set.Segments() {
			if !s.scrubSegment(info.Meta.ID) {
				return
			}
		}
		s.metrics.Passes.Inc()
		s.logger.Debug("segment scrub pass done", "took", s.now().Sub(start))
	}
}

// scrubSegment checks every file of the segment with ID id, if it is still
// in the set, and quarantines it if one does not match. It reports false
// when Stop was called.
func (s *Scrubber) scrubSegment(id string) bool {
	seg := s.set.acquireID(id)
	if seg == nil {
		return true // Replaced or dropped since the list was taken.
	}
	maps := append([][]byte{seg.indexMap}, seg.chunkMaps...)
	files := seg.files
	dir := seg.dir
	seg.Release()
	for i, fm := range files {
		want, _ := parseCRC(fm.CRC32C)
		var crc uint32
		for off := 0; off < len(maps[i]); off += scrubPiece {
			// Hold the segment only while reading its mapping, so that
			// compaction, retention and a quarantine never wait a pause.
			if seg.Acquire() != nil {
				return true // Closed: it left the set.
			}
			end := min(off+scrubPiece, len(maps[i]))
			crc = crc32.Update(crc, castagnoli, maps[i][off:end])
			seg.Release()
			s.metrics.ScrubbedBytes.Add(float64(end - off))
			pause := time.Duration(float64(end-off) / float64(s.opts.BytesPerSecond) * float64(time.Second))
			if !s.sleep(pause, s.stop) {
				return false
			}
		}
		if crc != want {
			err := &CorruptionError{Dir: dir, File: fm.Name, Offset: -1,
				Err: fmt.Errorf("%w with meta.json (computed %08x, meta %s), found by the background scrub", ErrChecksum, crc, fm.CRC32C)}
			s.metrics.Corrupt.Inc()
			s.set.Quarantine(id, err)
			return true
		}
	}
	return true
}

// acquireID returns the segment with ID id acquired for reading, or nil
// if it is not in the set (or closing).
func (s *Set) acquireID(id string) *Segment {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	for _, seg := range s.segs {
		if seg.meta.ID == id && seg.Acquire() == nil {
			return seg
		}
	}
	return nil
}

// sleepOrStop waits d and reports true, or false as soon as stop closes.
func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Quarantined returns how many segments lie in the quarantine directory
// (moved there at start, after a read found them damaged, or by the
// scrub), whenever that happened.
func (s *Set) Quarantined() int {
	entries, err := os.ReadDir(filepath.Join(s.dir, quarantineDirname))
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logger.Debug("list quarantined segments", "err", err)
	}
	return n
}
