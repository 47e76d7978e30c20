// Package target is the load generator's view of the server under test: a
// base URL and a flavour (strata, prometheus or generic) that says which
// endpoints exist and where its figures (memory, series, disk) are read.
//
// It sends write and query requests and reports their outcome without
// judging them, and takes snapshots of the server's own figures. It must
// not generate data or keep statistics; the caller does.
package target
