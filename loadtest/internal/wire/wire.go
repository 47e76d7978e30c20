package wire

import (
	"fmt"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// Protocol names a write protocol.
type Protocol string

const (
	// RemoteWrite is Prometheus remote write 1.0.
	RemoteWrite Protocol = "rw"
	// LineProtocol is Influx line protocol, timestamps in milliseconds.
	LineProtocol Protocol = "lp"
)

// ParseProtocol accepts rw/remote-write and lp/line-protocol/influx.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "rw", "remote-write", "remotewrite", "prometheus":
		return RemoteWrite, nil
	case "lp", "line-protocol", "lineprotocol", "influx":
		return LineProtocol, nil
	}
	return "", fmt.Errorf("unknown protocol %q: want rw or lp", s)
}

// Endpoint says where and how a body is sent.
type Endpoint struct {
	// Path is the request path with its query string.
	Path string
	// Header holds the request headers.
	Header map[string]string
}

// Encoder turns batches into request bodies. An Encoder is not safe for
// concurrent use; give each writer its own.
type Encoder interface {
	// Encode returns the body for b. The body is valid until the next call.
	Encode(b *gen.Batch) []byte
	// Endpoint says where bodies go.
	Endpoint() Endpoint
}

// NewEncoder returns an encoder for p.
func NewEncoder(p Protocol) (Encoder, error) {
	switch p {
	case RemoteWrite:
		return newRWEncoder(), nil
	case LineProtocol:
		return newLPEncoder(), nil
	}
	return nil, fmt.Errorf("unknown protocol %q", p)
}

var (
	_ Encoder = (*rwEncoder)(nil)
	_ Encoder = (*lpEncoder)(nil)
)
