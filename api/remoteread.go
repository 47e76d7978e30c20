package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"net/http"

	"github.com/golang/snappy"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/segments"
)

// Prometheus remote read (POST /api/v1/read), as Prometheus' own
// storage/remote read handler serves it: a snappy-compressed
// prompb.ReadRequest in, and either one snappy-compressed prompb.ReadResponse
// (SAMPLES: floats and native histograms) or a stream of framed
// prompb.ChunkedReadResponse messages holding XOR, histogram and float
// histogram chunks (STREAMED_XOR_CHUNKS) out.
//
// The helpers of github.com/prometheus/prometheus/storage/remote are not
// used: importing that package pulls the OpenTelemetry collector and the
// cloud SDKs into the module graph. The wire format is small and written
// down in prompb/remote.proto; it is implemented here.

const (
	// remoteReadMaxBytesInFrame is the size above which a series' chunks
	// are split over several frames (Prometheus' default,
	// --storage.remote.read-max-bytes-in-frame). A frame may exceed it by
	// up to one chunk.
	remoteReadMaxBytesInFrame = 1 << 20
	// remoteReadSamplesPerChunk is the most samples one streamed chunk
	// holds, as in Prometheus' head.
	remoteReadSamplesPerChunk = 120
	// defaultRemoteReadMaxSamples bounds the samples of one read request
	// when the engine reports no limit of its own.
	defaultRemoteReadMaxSamples = 50_000_000
	// remoteReadCtxCheckInterval is how many samples are read between two
	// checks of the request's context.
	remoteReadCtxCheckInterval = 4096

	remoteReadSamplesContentType  = "application/x-protobuf"
	remoteReadStreamedContentType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
)

// castagnoliTable is the CRC-32 table of the streamed frames' checksums.
var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// readQuery is one query of a read request, validated.
type readQuery struct {
	mint, maxt int64 // milliseconds, inclusive
	matchers   []*labels.Matcher
	hints      *storage.SelectHints // nil when the client sent none
}

// remoteRead serves Prometheus remote read. Reads go straight to the
// queryable, never through the result cache, and always return raw data.
// They have the limits of PromQL queries: the engine's timeout and its
// sample limit, counted over the whole request.
//
// Everything the client sent is validated before anything is read, so bad
// input gets a 400 with a JSON error body. A streamed answer that fails
// once frames are on the wire cannot change its status any more: the error
// is logged and the connection is cut, so that the client sees a truncated
// stream rather than a short answer it would take for complete.
func (a *API) remoteRead(c echo.Context) error {
	req, err := a.decodeReadRequest(c)
	if err != nil {
		return err
	}
	typ, err := negotiateResponseType(req.AcceptedResponseTypes)
	if err != nil {
		return err
	}
	queries, err := readQueries(req.Queries)
	if err != nil {
		return err
	}
	opts := a.engine.Options()
	ctx, cancel := context.WithTimeout(c.Request().Context(), opts.Timeout)
	defer cancel()
	limit := opts.MaxSamples
	if limit <= 0 {
		limit = defaultRemoteReadMaxSamples
	}
	budget := &sampleBudget{ctx: ctx, limit: limit, left: limit}
	if typ == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
		return a.remoteReadStreamed(ctx, c, queries, budget)
	}
	return a.remoteReadSamples(ctx, c, queries, budget)
}

// decodeReadRequest reads a snappy-compressed prompb.ReadRequest with the
// body limits of the write endpoints.
func (a *API) decodeReadRequest(c echo.Context) (*prompb.ReadRequest, error) {
	buf, err := a.readBody(c)
	if err != nil {
		return nil, err
	}
	defer putBody(buf)
	body := buf.Bytes()
	if len(body) == 0 {
		return nil, badData("remote read: empty request body")
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, badData("remote read: decode snappy: %v", err)
	}
	if int64(n) > a.opts.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, badData("remote read: decode snappy: %v", err)
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, badData("remote read: decode protobuf: %v", err)
	}
	if len(req.Queries) == 0 {
		return nil, badData("remote read: the request has no queries")
	}
	return &req, nil
}

// negotiateResponseType picks the first accepted type Strata supports, as
// Prometheus does; no accepted type at all means SAMPLES.
func negotiateResponseType(accepted []prompb.ReadRequest_ResponseType) (prompb.ReadRequest_ResponseType, error) {
	if len(accepted) == 0 {
		return prompb.ReadRequest_SAMPLES, nil
	}
	for _, t := range accepted {
		switch t {
		case prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS:
			return t, nil
		}
	}
	return 0, badData("remote read: none of the accepted response types %v is supported; supported: SAMPLES, STREAMED_XOR_CHUNKS", accepted)
}

// readQueries validates the queries and converts their matchers and hints.
func readQueries(pqs []*prompb.Query) ([]readQuery, error) {
	out := make([]readQuery, 0, len(pqs))
	for i, pq := range pqs {
		if pq == nil || len(pq.Matchers) == 0 {
			return nil, badData("remote read: query %d has no matchers", i)
		}
		ms, err := fromLabelMatchers(pq.Matchers)
		if err != nil {
			return nil, badData("remote read: query %d: %v", i, err)
		}
		q := readQuery{mint: pq.StartTimestampMs, maxt: pq.EndTimestampMs, matchers: ms}
		if h := pq.Hints; h != nil {
			q.hints = &storage.SelectHints{
				Start: h.StartMs, End: h.EndMs, Step: h.StepMs, Func: h.Func,
				Grouping: h.Grouping, By: h.By, Range: h.RangeMs,
			}
			// Hints without a time range (from clients other than
			// Prometheus) must not narrow the read to the instant 0.
			if h.StartMs == 0 && h.EndMs == 0 {
				q.hints.Start, q.hints.End = q.mint, q.maxt
			}
		}
		out = append(out, q)
	}
	return out, nil
}

// fromLabelMatchers converts the wire matchers, compiling regular
// expressions.
func fromLabelMatchers(pms []*prompb.LabelMatcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(pms))
	for _, pm := range pms {
		if pm == nil {
			return nil, errors.New("empty matcher")
		}
		var mt labels.MatchType
		switch pm.Type {
		case prompb.LabelMatcher_EQ:
			mt = labels.MatchEqual
		case prompb.LabelMatcher_NEQ:
			mt = labels.MatchNotEqual
		case prompb.LabelMatcher_RE:
			mt = labels.MatchRegexp
		case prompb.LabelMatcher_NRE:
			mt = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("matcher on %q: unknown matcher type %d", pm.Name, pm.Type)
		}
		m, err := labels.NewMatcher(mt, pm.Name, pm.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid matcher %s%s%q: %w", pm.Name, mt, pm.Value, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// sampleBudget counts the samples of one request against the limit and
// checks the request's context now and then. A float sample costs 1, a
// native histogram its size (ingest.HistogramCost), as the PromQL engine
// counts them against the same limit.
type sampleBudget struct {
	ctx         context.Context
	limit, left int
	taken       int // samples and histograms taken, for the context checks
}

// take takes the cost of x from the budget.
func (b *sampleBudget) take(x *segments.Sample) error {
	cost := 1
	if x.H != nil || x.FH != nil {
		cost = ingest.HistogramCost(x.H, x.FH)
	}
	if b.left < cost {
		return &apiError{typ: errExecution, status: http.StatusUnprocessableEntity,
			err: fmt.Errorf("remote read would return more than %d samples (query.max-samples; a native histogram counts by its size); narrow the matchers or the time range", b.limit)}
	}
	b.left -= cost
	b.taken++
	if b.taken%remoteReadCtxCheckInterval == 0 {
		return b.ctx.Err()
	}
	return nil
}

// selectSeries calls fn for every series matching q, in label order, with
// an iterator of its samples. The querier is closed when it returns.
func (a *API) selectSeries(ctx context.Context, q readQuery, fn func(labels.Labels, chunkenc.Iterator) error) error {
	querier, err := a.queryable.Querier(q.mint, q.maxt)
	if err != nil {
		return fmt.Errorf("open querier: %w", err)
	}
	defer func() {
		if err := querier.Close(); err != nil {
			a.logger.Warn("remote read: close querier", "err", err)
		}
	}()
	set := querier.Select(ctx, true, q.hints, q.matchers...)
	var it chunkenc.Iterator
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := set.At()
		it = s.Iterator(it)
		if err := fn(s.Labels(), it); err != nil {
			return err
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", s.Labels(), err)
		}
	}
	for _, w := range set.Warnings() {
		a.logger.Warn("remote read: warning", "err", w)
	}
	return set.Err()
}

// nextInRange advances it to its next sample in [mint, maxt], a float or a
// native histogram (a copy the caller owns); ok is false at the end of the
// range.
func nextInRange(it chunkenc.Iterator, mint, maxt int64) (x segments.Sample, ok bool) {
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		t := it.AtT()
		if t < mint {
			continue
		}
		if t > maxt {
			break
		}
		return segments.ReadSample(it, vt, nil, nil), true
	}
	return segments.Sample{}, false
}

// remoteReadSamples answers one snappy-compressed prompb.ReadResponse with
// every sample of every query: floats in samples, native histograms in
// histograms.
func (a *API) remoteReadSamples(ctx context.Context, c echo.Context, queries []readQuery, budget *sampleBudget) error {
	resp := prompb.ReadResponse{Results: make([]*prompb.QueryResult, len(queries))}
	for i, q := range queries {
		res := &prompb.QueryResult{}
		err := a.selectSeries(ctx, q, func(ls labels.Labels, it chunkenc.Iterator) error {
			var (
				samples    []prompb.Sample
				histograms []prompb.Histogram
			)
			for {
				x, ok := nextInRange(it, q.mint, q.maxt)
				if !ok {
					break
				}
				if err := budget.take(&x); err != nil {
					return err
				}
				switch {
				case x.H != nil:
					histograms = append(histograms, prompb.FromIntHistogram(x.T, x.H))
				case x.FH != nil:
					histograms = append(histograms, prompb.FromFloatHistogram(x.T, x.FH))
				default:
					samples = append(samples, prompb.Sample{Timestamp: x.T, Value: x.V})
				}
			}
			if len(samples)+len(histograms) > 0 {
				res.Timeseries = append(res.Timeseries, &prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil), Samples: samples, Histograms: histograms})
			}
			return nil
		})
		if err != nil {
			return err
		}
		resp.Results[i] = res
	}
	raw, err := resp.Marshal()
	if err != nil {
		return fmt.Errorf("marshal read response: %w", err)
	}
	c.Response().Header().Set("Content-Encoding", "snappy")
	return c.Blob(http.StatusOK, remoteReadSamplesContentType, snappy.Encode(nil, raw))
}

// remoteReadStreamed streams every series of every query as XOR chunks, at
// most one series per frame.
func (a *API) remoteReadStreamed(ctx context.Context, c echo.Context, queries []readQuery, budget *sampleBudget) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, remoteReadStreamedContentType)
	s := &chunkStreamer{w: w, budget: budget}
	for i, q := range queries {
		s.queryIndex, s.mint, s.maxt = int64(i), q.mint, q.maxt
		if err := a.selectSeries(ctx, q, s.series); err != nil {
			if !w.Committed {
				return err
			}
			a.logger.Error("remote read: streamed response failed after it started; cutting the connection", "query", i, "err", err)
			// net/http closes the connection without ending the chunked
			// body: the client reads an unexpected EOF, not a clean end.
			panic(http.ErrAbortHandler)
		}
	}
	if !w.Committed {
		w.WriteHeader(http.StatusOK)
	}
	w.Flush()
	return nil
}

// chunkStreamer encodes series into XOR chunks and writes them as framed
// ChunkedReadResponse messages: a uvarint length, the big-endian CRC-32
// (Castagnoli) of the message, then the message.
type chunkStreamer struct {
	w          *echo.Response
	budget     *sampleBudget
	queryIndex int64
	mint, maxt int64

	lbls []prompb.Label // reused for each series
	chks []prompb.Chunk // the frame being filled
	buf  []byte         // reused for each marshalled frame
	hdr  [binary.MaxVarintLen64 + 4]byte
}

// series streams one series' samples in [s.mint, s.maxt]; a series without
// any sends nothing. Floats go into XOR chunks and native histograms into
// histogram or float histogram chunks, cut as the head cuts them (a new
// chunk when the kind changes or a counter resets).
func (s *chunkStreamer) series(ls labels.Labels, it chunkenc.Iterator) error {
	s.lbls = prompb.FromLabels(ls, s.lbls[:0])
	maxData := remoteReadMaxBytesInFrame
	for i := range s.lbls {
		maxData -= embeddedSize(s.lbls[i].Size())
	}
	frameLeft := maxData
	s.chks = s.chks[:0]
	var (
		chk        chunkenc.Chunk
		app        chunkenc.Appender
		mint, maxt int64
	)
	// emit adds the chunk to the frame, and sends the frame when full.
	emit := func() error {
		frameLeft -= s.cut(chk, mint, maxt)
		chk = nil
		if frameLeft <= 0 {
			if err := s.sendFrame(); err != nil {
				return err
			}
			frameLeft = maxData
		}
		return nil
	}
	for {
		x, ok := nextInRange(it, s.mint, s.maxt)
		if !ok {
			break
		}
		if err := s.budget.take(&x); err != nil {
			return err
		}
		next, nextApp, cut := segments.AppendSample(chk, app, nil, &x)
		if cut && chk != nil {
			if err := emit(); err != nil {
				return err
			}
		}
		if cut {
			mint = x.T
		}
		chk, app, maxt = next, nextApp, x.T
		if chk.NumSamples() < remoteReadSamplesPerChunk {
			continue
		}
		if err := emit(); err != nil {
			return err
		}
	}
	if chk != nil {
		s.cut(chk, mint, maxt)
	}
	if len(s.chks) > 0 {
		return s.sendFrame()
	}
	return nil
}

// chunkTypes maps chunk encodings to their remote read types.
var chunkTypes = map[chunkenc.Encoding]prompb.Chunk_Encoding{
	chunkenc.EncXOR:            prompb.Chunk_XOR,
	chunkenc.EncHistogram:      prompb.Chunk_HISTOGRAM,
	chunkenc.EncFloatHistogram: prompb.Chunk_FLOAT_HISTOGRAM,
}

// cut adds a full chunk to the frame and returns its encoded size in the
// frame: the message, its tag and its length.
func (s *chunkStreamer) cut(chk chunkenc.Chunk, mint, maxt int64) int {
	s.chks = append(s.chks, prompb.Chunk{MinTimeMs: mint, MaxTimeMs: maxt, Type: chunkTypes[chk.Encoding()], Data: chk.Bytes()})
	return embeddedSize(s.chks[len(s.chks)-1].Size())
}

// embeddedSize is the size of an n-byte message inside another: its tag,
// its length and itself.
func embeddedSize(n int) int { return 1 + (bits.Len64(uint64(n)|1)+6)/7 + n }

// sendFrame writes the chunks collected so far as one frame.
func (s *chunkStreamer) sendFrame() error {
	resp := prompb.ChunkedReadResponse{
		ChunkedSeries: []*prompb.ChunkedSeries{{Labels: s.lbls, Chunks: s.chks}},
		QueryIndex:    s.queryIndex,
	}
	size := resp.Size()
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	n, err := resp.MarshalToSizedBuffer(s.buf[:size])
	if err != nil {
		return fmt.Errorf("marshal chunked read response: %w", err)
	}
	// MarshalToSizedBuffer fills the buffer from its end.
	msg := s.buf[size-n : size]
	h := binary.PutUvarint(s.hdr[:], uint64(len(msg)))
	binary.BigEndian.PutUint32(s.hdr[h:], crc32.Checksum(msg, castagnoliTable))
	if _, err := s.w.Write(s.hdr[:h+4]); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := s.w.Write(msg); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	s.chks = s.chks[:0]
	return nil
}
