//go:build slicelabels || dedupelabels

package segments

// labelsCopy is false when labels.ScratchBuilder keeps the strings it was
// given: strings aliasing the mmapped index must be cloned first.
const labelsCopy = false
