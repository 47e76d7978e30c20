//go:build slicelabels || dedupelabels

package ingest

import "github.com/prometheus/prometheus/model/labels"

// arenaLabels is false in these builds: a labels.Labels is more than an
// encoding, and the builder allocates each label set it keeps.
const arenaLabels = false

func labelsData(labels.Labels) string { panic("labelsData: stringlabels builds only") }

func labelsFromData(string) labels.Labels { panic("labelsFromData: stringlabels builds only") }
