// Package ingest turns the bodies of write requests into validated batches.
//
// It owns the wire formats Strata accepts on its push paths — Prometheus
// remote write 1.0 (snappy-compressed protobuf), OTLP/HTTP metrics
// (through Prometheus' OTLP translator), Influx line protocol,
// VictoriaMetrics-style JSON lines and the Prometheus text exposition
// format — and the rules every incoming series must satisfy: metric and
// label names that are valid UTF-8 (Prometheus 3's default; or, with
// Limits.LegacyNames, Prometheus 2's character set), no reserved "__"
// labels other than __name__, no duplicate label names, and the
// per-request Limits.
//
// Every decoder is all-or-nothing: it returns a complete *Batch whose series
// all pass ValidateSeries, or an error and no batch (remote write 2.0 may
// leave out what it says in a Rejected; OTLP leaves out delta-temporality
// data points and counts them in its OTLPResult). Samples of one label
// set that appear several times in a request are merged into one Series.
// Errors are *Error values that wrap one of the package's sentinels
// (ErrEmptyBody, ErrTooManySeries, ErrMalformed, ...) so callers can decide
// with errors.Is; all of them describe bad input (HTTP 400), never a server
// fault.
//
// Decoders are pure functions of their arguments and are safe for
// concurrent use. Package ingest must not touch disk or hold state between
// requests beyond pooled scratch buffers: appending to the WAL is buffer's
// job, answering HTTP is api's.
package ingest
