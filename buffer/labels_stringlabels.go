//go:build !slicelabels && !dedupelabels

package buffer

import (
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// labelsAreData is true where a labels.Labels is its encoding alone (the
// default stringlabels build: each name and value preceded by its length,
// one byte for 0-254, else 255 and 3 bytes little-endian; see
// model/labels/labels_stringlabels.go), the encoding seriesLabels is made
// of. The head then compares a request's labels with a series' compact
// form, and makes labels.Labels of it, on these bytes. TestLabelsData
// checks the layout this relies on.
const labelsAreData = true

// labelsData returns the encoding lset holds.
func labelsData(lset labels.Labels) string {
	return *(*string)(unsafe.Pointer(&lset))
}

// labelsFromData returns the labels.Labels that holds the encoding data.
func labelsFromData(data string) labels.Labels {
	return *(*labels.Labels)(unsafe.Pointer(&data))
}

// labels.Labels must be a string header alone for the casts above.
var _ [unsafe.Sizeof(labels.Labels{}) - unsafe.Sizeof("")]struct{}
var _ [unsafe.Sizeof("") - unsafe.Sizeof(labels.Labels{})]struct{}
