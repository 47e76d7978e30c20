// Package query answers PromQL over Strata's storage.
//
// It owns the storage.Queryable that merges the head with the immutable
// segments (and, as they are added, picks the resolution a query reads), the
// PromQL engine with its limits, and the range-query frontend in front of it.
// It must not know wire formats: the api package encodes what it returns.
package query
