// Package gen generates realistic devops metrics for load tests: a fleet of
// hosts, each with the metric families people actually scrape (CPU usage
// gauges, memory gauges, disk and network byte counters that reset when a
// host reboots), every host carrying host, region, datacenter, rack, os and
// service labels.
//
// Values are random walks (mean-reverting, bounded where the quantity is
// bounded), never constants or white noise. Everything is deterministic for
// a seed: a series' values depend only on the seed, the series and the step
// index, not on how the data is cut into batches or shared among writers.
//
// The package owns the data model and its batching (Batch, Stream); it must
// not know wire formats (see package wire) or talk to a server.
package gen
