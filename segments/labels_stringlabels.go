//go:build !slicelabels && !dedupelabels

package segments

// labelsCopy is true when labels.ScratchBuilder.Labels copies the strings it
// was given (the default stringlabels build), so strings aliasing the
// mmapped index can be added without cloning.
const labelsCopy = true
