// Package report holds what a load test measured and prints it: request
// and sample counts, errors by status, latency percentiles recorded in HDR
// histograms, and the target's own figures (memory, series, disk) before
// and after the run. A report renders as text for people and as JSON for
// scripts.
//
// The package only records and renders; it must not send requests.
package report
