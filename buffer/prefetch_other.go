//go:build !amd64

package buffer

// prefetch does nothing on this architecture (see prefetch_amd64.go).
func prefetch(a, b, c, d uintptr) {}
