//go:build !unix

package buffer

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// lockFile does not lock on systems without flock: Strata's supported
// platforms are unix; elsewhere the data dir is not protected.
func lockFile(*os.File) error { return nil }
