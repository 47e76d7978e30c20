// Package wire encodes generated batches (package gen) into request bodies
// of the write protocols a load test speaks: Prometheus remote write 1.0
// (snappy-compressed protobuf) and Influx line protocol.
//
// Encoders write into reused buffers with no allocation per sample, so that
// the load generator, which shares the machine with the server under test,
// costs as little as it can. The package must not do I/O.
package wire
