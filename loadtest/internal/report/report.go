package report

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"time"
)

// Report is the outcome of one run.
type Report struct {
	Command string    `json:"command"` // ingest, query or mixed
	Preset  string    `json:"preset,omitempty"`
	Target  Target    `json:"target"`
	Started time.Time `json:"started"`
	// ElapsedSeconds is the length of the measured phase.
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	// Settings are the options in effect, as flag name → value.
	Settings map[string]string `json:"settings,omitempty"`
	Ingest   *Ingest           `json:"ingest,omitempty"`
	Query    *Query            `json:"query,omitempty"`
	Server   *Server           `json:"server,omitempty"`
	// Notes are remarks a reader should see: partial figures, skipped
	// steps.
	Notes []string `json:"notes,omitempty"`
}

// Target names what was loaded.
type Target struct {
	URL     string `json:"url"`
	Flavour string `json:"flavour"`
}

// Ingest is what the writers did.
type Ingest struct {
	Protocol     string `json:"protocol"`
	Writers      int    `json:"writers"`
	BatchSamples int    `json:"batchSamples"`
	Series       int    `json:"series"`
	// Backfill is the time span generated, when backfilling.
	Backfill string `json:"backfill,omitempty"`
	// Requests counts requests finished, whatever their outcome;
	// RequestsOK those answered 2xx.
	Requests   int64 `json:"requests"`
	RequestsOK int64 `json:"requestsOk"`
	// SamplesSent counts samples in finished requests, SamplesAcked those
	// in requests answered 2xx.
	SamplesSent    int64   `json:"samplesSent"`
	SamplesAcked   int64   `json:"samplesAcked"`
	BytesSent      int64   `json:"bytesSent"`
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	// SamplesPerSecond is acknowledged samples over the ingest phase.
	SamplesPerSecond  float64  `json:"samplesPerSecond"`
	RequestsPerSecond float64  `json:"requestsPerSecond"`
	Errors            Errors   `json:"errors"`
	ErrorMessages     []string `json:"errorMessages,omitempty"`
	Latency           Latency  `json:"latency"`
	// ServerCPUSeconds is the CPU time the server's process used while
	// the writers ran (its process_cpu_seconds_total, read before and
	// after), and LoadCPUSeconds the load generator's own (the whole
	// process: with queries running too, theirs is in it); nil when it
	// could not be read. On a shared machine they say more than rates do.
	ServerCPUSeconds *float64 `json:"serverCpuSeconds,omitempty"`
	LoadCPUSeconds   *float64 `json:"loadCpuSeconds,omitempty"`
}

// Query is what the query workers did.
type Query struct {
	Mix         string `json:"mix"`
	Concurrency int    `json:"concurrency"`
	NoCache     bool   `json:"noCache"`
	// Distinct is the number of distinct queries cycled through; zero
	// means each query was drawn afresh.
	Distinct          int      `json:"distinct"`
	Requests          int64    `json:"requests"`
	RequestsOK        int64    `json:"requestsOk"`
	ElapsedSeconds    float64  `json:"elapsedSeconds"`
	RequestsPerSecond float64  `json:"requestsPerSecond"`
	Errors            Errors   `json:"errors"`
	ErrorMessages     []string `json:"errorMessages,omitempty"`
	// EmptyResults counts successful answers with no series: a sign that
	// the queried data is not there.
	EmptyResults int64 `json:"emptyResults"`
	// SeriesReturned and PointsReturned add up the answers' sizes.
	SeriesReturned int64   `json:"seriesReturned"`
	PointsReturned int64   `json:"pointsReturned"`
	Latency        Latency `json:"latency"`
	// Cache counts the values of the X-Strata-Cache header; empty when the
	// target sends none.
	Cache map[string]int64 `json:"cache,omitempty"`
	// CacheHitRatio is hits over answers that carried the header.
	CacheHitRatio *float64    `json:"cacheHitRatio,omitempty"`
	ByTemplate    []Breakdown `json:"byTemplate,omitempty"`
	// ServerCPUSeconds and LoadCPUSeconds are as Ingest's, over the
	// measured phase (after any warm-up); nil when they could not be read
	// or when writers ran at the same time (Ingest holds them then).
	ServerCPUSeconds *float64 `json:"serverCpuSeconds,omitempty"`
	LoadCPUSeconds   *float64 `json:"loadCpuSeconds,omitempty"`
	// LoadGCCycles counts the load generator's garbage collections over
	// the measured phase; LoadGCBetween says its workers ran them between
	// their queries (--gc-between-queries) rather than the runtime at any
	// moment.
	LoadGCCycles  int64 `json:"loadGcCycles"`
	LoadGCBetween bool  `json:"loadGcBetween"`
	// SlowOverMs, when positive, is the latency above which a query was
	// counted in SlowCount.
	SlowOverMs float64 `json:"slowOverMs,omitempty"`
	SlowCount  int64   `json:"slowCount,omitempty"`
	// Slowest are the slowest queries of the measured phase, slowest
	// first, with the time each was sent: to find what else happened
	// then (a collection, a background job) in the server's logs or an
	// execution trace.
	Slowest []SlowQuery `json:"slowest,omitempty"`
}

// SlowQuery is one query of Query.Slowest.
type SlowQuery struct {
	Start     time.Time `json:"start"`
	LatencyMs float64   `json:"latencyMs"`
	Template  string    `json:"template"`
	Query     string    `json:"query"`
	Cache     string    `json:"cache,omitempty"`
}

// Breakdown is the latency of one kind of query.
type Breakdown struct {
	Name    string  `json:"name"`
	Count   int64   `json:"count"`
	Errors  int64   `json:"errors"`
	Latency Latency `json:"latency"`
}

// Server holds the target's own figures.
type Server struct {
	Before *Snapshot `json:"before,omitempty"`
	After  *Snapshot `json:"after,omitempty"`
	// RSSGrowthBytes and SeriesGrowth are After minus Before.
	RSSGrowthBytes *int64 `json:"rssGrowthBytes,omitempty"`
	SeriesGrowth   *int64 `json:"seriesGrowth,omitempty"`
	// RSSPerSeriesBytes is RSSGrowthBytes / SeriesGrowth, when series grew.
	RSSPerSeriesBytes *float64 `json:"rssPerSeriesBytes,omitempty"`
	// BytesPerSample is bytes on disk per sample stored, and
	// BytesPerSampleBasis says what was counted.
	BytesPerSample      *float64 `json:"bytesPerSample,omitempty"`
	BytesPerSampleBasis string   `json:"bytesPerSampleBasis,omitempty"`
	// Disk is the bytes per sample of the ingested window's segments after
	// the flush and after the merge (ingest --past-day --flush).
	Disk *Disk `json:"disk,omitempty"`
}

// Disk measures the raw segments holding the window [From, To): as
// flushed, and after the window's day was merged.
type Disk struct {
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	AfterFlush *DiskFigure `json:"afterFlush,omitempty"`
	AfterMerge *DiskFigure `json:"afterMerge,omitempty"`
	// ClosingSamples were sent after the flush to close the day (one step
	// of every series); the ingest figures do not count them.
	ClosingSamples int64 `json:"closingSamples"`
}

// DiskFigure adds up some segments: their files, index included.
type DiskFigure struct {
	Segments       int     `json:"segments"`
	Bytes          int64   `json:"bytes"`
	Samples        int64   `json:"samples"`
	BytesPerSample float64 `json:"bytesPerSample"`
	// MaxLevel is the highest compaction level among them (1: as flushed).
	MaxLevel int `json:"maxLevel"`
}

// WindowFigure adds up the raw segments of s that lie wholly inside
// [from, to) (ms); nil when there are none.
func WindowFigure(s *Snapshot, from, to int64) *DiskFigure {
	if s == nil {
		return nil
	}
	var d DiskFigure
	for _, g := range s.Segments {
		if g.Resolution != 0 || g.MinTime < from || g.MaxTime >= to {
			continue
		}
		d.Segments++
		d.Bytes += g.Bytes
		d.Samples += g.Samples
		d.MaxLevel = max(d.MaxLevel, g.Level)
	}
	if d.Samples == 0 {
		return nil
	}
	d.BytesPerSample = float64(d.Bytes) / float64(d.Samples)
	return &d
}

// Snapshot is what the target said about itself at one moment. Fields it
// does not expose are nil.
type Snapshot struct {
	At              time.Time `json:"at"`
	RSSBytes        *int64    `json:"rssBytes,omitempty"`
	HeadSeries      *int64    `json:"headSeries,omitempty"`
	HeadSamples     *int64    `json:"headSamples,omitempty"`
	SamplesAppended *int64    `json:"samplesAppended,omitempty"`
	// WALBytes is the write-ahead log (for Prometheus also chunks_head).
	WALBytes *int64 `json:"walBytes,omitempty"`
	// BlockBytes and BlockSamples cover the immutable files: Strata's
	// segments, Prometheus' blocks.
	BlockBytes   *int64 `json:"blockBytes,omitempty"`
	BlockSamples *int64 `json:"blockSamples,omitempty"`
	Blocks       *int64 `json:"blocks,omitempty"`
	// DiskBytes is everything in the data directory.
	DiskBytes *int64 `json:"diskBytes,omitempty"`
	// Segments are Strata's segments (/api/v1/status/tsdb).
	Segments []Segment `json:"segments,omitempty"`
}

// Segment is one of Strata's segments.
type Segment struct {
	MinTime    int64 `json:"minTime"`
	MaxTime    int64 `json:"maxTime"`
	Resolution int64 `json:"resolution"`
	Samples    int64 `json:"samples"`
	Bytes      int64 `json:"bytes"`
	Level      int   `json:"level"`
}

// Errors counts failed requests by cause: an HTTP status code ("400",
// "503") or "transport" when no answer came.
type Errors map[string]int64

// Total is the number of failed requests.
func (e Errors) Total() int64 {
	var n int64
	for _, c := range e {
		n += c
	}
	return n
}

// ErrorLog collects errors from concurrent workers: counts by cause and the
// first few distinct messages.
type ErrorLog struct {
	mu       sync.Mutex
	counts   Errors // mu guards counts and messages
	messages []string
}

// maxMessages bounds the messages kept.
const maxMessages = 5

// Add counts one failure of cause with its message.
func (l *ErrorLog) Add(cause, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = Errors{}
	}
	l.counts[cause]++
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	msg = cause + ": " + msg
	if len(l.messages) < maxMessages && !slices.Contains(l.messages, msg) {
		l.messages = append(l.messages, msg)
	}
}

// Total is the number of failures so far.
func (l *ErrorLog) Total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts.Total()
}

// Result returns a copy of the counts and messages.
func (l *ErrorLog) Result() (Errors, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Errors{}
	for k, v := range l.counts {
		c[k] = v
	}
	return c, slices.Clone(l.messages)
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Int64 returns a pointer to v, for optional fields.
func Int64(v int64) *int64 { return &v }

// Float64 returns a pointer to v, for optional fields.
func Float64(v float64) *float64 { return &v }
