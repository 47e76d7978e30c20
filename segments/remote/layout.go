package remote

import (
	"path"
	"strings"
)

// The bucket's layout, under the prefix of storage.object.url:
//
//	segments/<id>/index, segments/<id>/chunks/…   the segment's data files
//	segments/<id>/names.json                      the segment's metric names (JSON strings), for readers
//	segments/<id>/meta.json                       uploaded last: the marker
//	tombstones/<time>-<random>.json               a delete (tombstones.go)
//	writer.json                                   the writer's external labels
//
// A segment is visible to readers once its meta.json is in the bucket; the
// data files are uploaded and verified before it, and meta.json is deleted
// first when a segment leaves the bucket. A segment whose meta.json is
// absent is an upload (or a deletion) that did not finish.
const (
	segmentsPrefix = "segments/"
	metaName       = "meta.json"
	// namesName is not a file of the segment: the uploader writes it so
	// that a reader learns which metrics a new segment holds with one
	// small GET (to invalidate their cached answers), and fetches skip it.
	namesName = "names.json"
	// probeKey is a key no one writes: a round asks for it to see
	// whether the bucket answers.
	probeKey = "strata-probe"
)

func segmentPrefix(id string) string  { return segmentsPrefix + id + "/" }
func objectKey(id, rel string) string { return segmentPrefix(id) + path.Clean(rel) }
func metaKey(id string) string        { return objectKey(id, metaName) }

// parseMetaKey returns the segment ID of a key segments/<id>/meta.json.
func parseMetaKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, segmentsPrefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/"+metaName)
	return id, ok && id != "" && !strings.Contains(id, "/")
}
