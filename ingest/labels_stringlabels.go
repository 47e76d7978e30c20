//go:build !slicelabels && !dedupelabels

package ingest

import (
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// arenaLabels is true where a labels.Labels is its encoding alone (the
// default stringlabels build): the builder then copies each label set of
// a request decoded with a Known into a shared arena (labelArena) rather
// than allocating it.
const arenaLabels = true

// labelsData returns the encoding a labels.Labels holds in this build.
func labelsData(lset labels.Labels) string {
	return *(*string)(unsafe.Pointer(&lset))
}

// labelsFromData returns the labels.Labels whose encoding is data, as
// labelsData returned it (or a copy of it).
func labelsFromData(data string) labels.Labels {
	return *(*labels.Labels)(unsafe.Pointer(&data))
}

// labels.Labels must be a string header alone for the casts above.
var _ [unsafe.Sizeof(labels.Labels{}) - unsafe.Sizeof("")]struct{}
var _ [unsafe.Sizeof("") - unsafe.Sizeof(labels.Labels{})]struct{}
