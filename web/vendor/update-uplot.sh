#!/usr/bin/env bash
# Refreshes the vendored uPlot in web/static/vendor/uplot/ from the npm
# registry. Only maintainers run this; `go build` never needs npm.
#
#   web/vendor/update-uplot.sh           # the version pinned below
#   web/vendor/update-uplot.sh 1.6.33    # another version
#
# After running it, update the version and checksums in web/vendor/README.md
# and run `go test ./web/ ./cmd/strata/ -run Web`.
set -euo pipefail
version="${1:-1.6.32}"
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../static/vendor/uplot"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tar -xzf "$tmp/uplot-$version.tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.esm.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$dest/"
echo "$version" >"$dest/VERSION"
(cd "$dest" && sha256sum uPlot.esm.js uPlot.min.css)
echo "uPlot $version written to $dest"
