package buffer

// prefetch asks the processor to bring the cache lines holding the four
// addresses closer, without waiting for them and without reading memory
// as far as the program is concerned: an address that is no longer (or
// never was) what it was meant to be costs a wasted load, nothing else.
// Unlike a plain load it is not held up by the atomic instructions of
// the locks that follow it.
//
//go:noescape
func prefetch(a, b, c, d uintptr)
