// Package api serves Strata over HTTP with Echo: the write endpoints for
// each wire format, the Prometheus-compatible query API with its exact JSON
// shapes, health checks and /metrics.
//
// Errors are mapped to HTTP status codes and Prometheus-style error bodies
// in one place (errors.go). The package does no storage work itself: it
// decodes requests with package ingest, hands batches to an Appender and
// queries to package query.
package api
