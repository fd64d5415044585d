#!/usr/bin/env bash
# Vendor MathJax 3 into the book so that math renders offline.
#
# Usage: scripts/vendor_mathjax.sh [DEST]        (default DEST: <repo>/book/_mathjax)
#
# Result: DEST/mathjax/es5/tex-chtml.js plus the components it loads lazily (input/, output/,
# ui/, a11y/, sre/, adaptors/), MathJax's LICENSE and a VERSION file. _config.yml copies DEST
# into the HTML root via html_extra_path, so pages load <html>/mathjax/es5/tex-chtml.js.
# Idempotent: does nothing when the wanted version is already there. DEST is gitignored.
set -euo pipefail

VERSION="${MATHJAX_VERSION:-3.2.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/book/_mathjax}"

if [[ -f "$DEST/mathjax/es5/tex-chtml.js" && "$(cat "$DEST/mathjax/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
    echo "MathJax $VERSION already vendored in $DEST"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm not found; it is needed once to vendor MathJax $VERSION for offline math." >&2
    echo "       Install Node.js/npm, or unpack mathjax-$VERSION.tgz (npm registry) so that" >&2
    echo "       $DEST/mathjax/es5/tex-chtml.js exists, and write '$VERSION' to $DEST/mathjax/VERSION." >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "Fetching mathjax@$VERSION with npm pack ..."
(cd "$tmp" && npm pack "mathjax@$VERSION" --silent >/dev/null)
tar -xzf "$tmp/mathjax-$VERSION.tgz" -C "$tmp"

# Assemble next to DEST, then swap it in, so an interrupted run never leaves a half copy.
stage="$tmp/stage/mathjax"
mkdir -p "$stage/es5"
cp "$tmp/package/LICENSE" "$stage/LICENSE"
cp "$tmp/package/es5/tex-chtml.js" "$stage/es5/"
for dir in input output ui a11y sre adaptors; do
    cp -R "$tmp/package/es5/$dir" "$stage/es5/$dir"
done
echo "$VERSION" > "$stage/VERSION"

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.old"
[[ -e "$DEST" ]] && mv "$DEST" "$DEST.old"
mv "$tmp/stage" "$DEST"
rm -rf "$DEST.old"
echo "Vendored MathJax $VERSION into $DEST ($(du -sh "$DEST" | cut -f1))"
