//go:build slicelabels || dedupelabels

package buffer

import "github.com/prometheus/prometheus/model/labels"

// labelsAreData is false in these builds: a labels.Labels is more than
// an encoding, and the head reads and makes them label by label.
const labelsAreData = false

func labelsData(labels.Labels) string { panic("labelsData: stringlabels builds only") }

func labelsFromData(string) labels.Labels { panic("labelsFromData: stringlabels builds only") }
