// Package cputime reads the CPU time the process has used, for tests and
// benchmarks that must tell their own cost from the waits of a loaded
// machine (speed is never asserted in a test; it is reported), and for
// the load generator's report of its own cost.
package cputime
