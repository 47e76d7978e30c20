package api

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/strata-tsdb/strata/ingest"
)

var formatOTLP = ingestFormat{name: "otlp"}

// otlpWrite serves OTLP/HTTP metrics (POST /api/v1/otlp/v1/metrics, as in
// Prometheus, and /opentelemetry/v1/metrics). The request is converted by
// Prometheus' translator (ingest.DecodeOTLP) and stored whole; data points
// refused one by one (delta temporality) are reported in the OTLP
// partial-success response. Errors answer a google.rpc.Status in the
// request's encoding, as the OTLP/HTTP specification asks, with the status
// the other write routes give the same error, so that the exporters' retry
// logic (429, 502, 503, 504 retried; everything else dropped) does the
// right thing.
func (a *API) otlpWrite(c echo.Context) error {
	r := c.Request()
	ct, err := otlpContentType(r.Header)
	if err != nil {
		return a.otlpError(c, ingest.OTLPProtobuf, a.rejected(formatOTLP, err))
	}
	buf, err := a.readBody(c)
	if err != nil {
		return a.otlpError(c, ct, a.rejected(formatOTLP, err))
	}
	defer putBody(buf)
	x := a.expectAppend()
	defer func() { x.Done() }() // refused, or a panic: appendExpected ends it otherwise
	batch, res, err := ingest.DecodeOTLP(r.Context(), buf.Bytes(), ct, a.opts.OTLP, a.opts.IngestLimits)
	if err != nil {
		return a.otlpError(c, ct, a.rejected(formatOTLP, err))
	}
	if len(res.Warnings) > 0 || res.DroppedExemplars > 0 {
		a.logger.Debug("OTLP translation warnings", "warnings", res.Warnings, "dropped_exemplars", res.DroppedExemplars)
	}
	if err := a.store(formatOTLP, &x, batch); err != nil {
		return a.otlpError(c, ct, err)
	}
	a.droppedExemplars(formatOTLP, res.DroppedExemplars)
	resp := pmetricotlp.NewExportResponse()
	if res.Rejected > 0 {
		a.metrics.otlpRejected.Add(float64(res.Rejected))
		resp.PartialSuccess().SetRejectedDataPoints(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	var body []byte
	if ct == ingest.OTLPJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		return fmt.Errorf("encode OTLP response: %w", err)
	}
	return c.Blob(http.StatusOK, ct, body)
}

// otlpContentType returns the body encoding of an OTLP request, or a 415
// error for a content type or encoding that is not OTLP/HTTP's.
func otlpContentType(h http.Header) (string, error) {
	unsupported := func(format string, args ...any) error {
		return &apiError{typ: errBadData, status: http.StatusUnsupportedMediaType, err: fmt.Errorf(format, args...)}
	}
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "gzip") && !strings.EqualFold(enc, "identity") {
		return "", unsupported("Content-Encoding %q is not supported: OTLP bodies are sent plain or gzip-compressed", enc)
	}
	ct := h.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", unsupported("invalid Content-Type %q: OTLP/HTTP is %s or %s", ct, ingest.OTLPProtobuf, ingest.OTLPJSON)
	}
	switch mt {
	case ingest.OTLPProtobuf, ingest.OTLPJSON:
		return mt, nil
	}
	return "", unsupported("Content-Type %q is not supported: OTLP/HTTP is %s or %s", mt, ingest.OTLPProtobuf, ingest.OTLPJSON)
}

// otlpError answers err as a google.rpc.Status encoded like the request
// (ct), with the status classify gives it.
func (a *API) otlpError(c echo.Context, ct string, err error) error {
	_, status := classify(err)
	msg := errorMessage(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		a.logger.Error("request failed", "path", c.Path(), "status", status, "err", msg)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "1")
	}
	st := &statuspb.Status{Code: int32(grpcCode(status)), Message: msg}
	var (
		body []byte
		merr error
	)
	if ct == ingest.OTLPJSON {
		body, merr = protojson.Marshal(st)
	} else {
		body, merr = proto.Marshal(st)
	}
	if merr != nil {
		return fmt.Errorf("encode OTLP error: %w (answering %w)", merr, err)
	}
	return c.Blob(status, ct, body)
}

// grpcCode is the gRPC code of an HTTP status, for the Status body.
func grpcCode(status int) codes.Code {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case status == http.StatusServiceUnavailable:
		return codes.Unavailable
	case status == statusClientClosedRequest:
		return codes.Canceled
	case status >= 500:
		return codes.Internal
	}
	return codes.InvalidArgument
}
