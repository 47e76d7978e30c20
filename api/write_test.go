package api

import (
	"bytes"
	"testing"
)

// TestPutBodyDropsLargeBuffers checks that a buffer grown by a large
// request is not kept in the pool, while a small one is reused.
func TestPutBodyDropsLargeBuffers(t *testing.T) {
	small := bytes.NewBuffer(make([]byte, 0, 64<<10))
	if !putBody(small) {
		t.Error("a 64 KiB buffer was not pooled")
	}
	big := bytes.NewBuffer(make([]byte, 0, 32<<20))
	if putBody(big) {
		t.Errorf("a %d-byte buffer was pooled; the limit is %d", big.Cap(), maxPooledBody)
	}
}
