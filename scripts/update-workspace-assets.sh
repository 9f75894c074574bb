#!/usr/bin/env bash
# Refresh the workspace's vendored front-end files from npm: the NL Design System CSS components, an
# example design-token theme and htmx. Nothing is installed: `npm pack` fetches each package's tarball,
# and only the files the workspace serves are copied (with their licences).
#
#   scripts/update-workspace-assets.sh                  # the pinned versions below
#   UTRECHT_CSS=9.0.5 scripts/update-workspace-assets.sh  # try a newer one, then run the browser tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UTRECHT_CSS="${UTRECHT_CSS:-9.0.4}"
VOORBEELD_TOKENS="${VOORBEELD_TOKENS:-7.4.1}"
HTMX="${HTMX:-2.0.11}"

vendor=services/workspace/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() { # package@version -> directory holding its package/
    local spec="$1" dir="$work/$2"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
    echo "$dir/package"
}

utrecht="$(unpack "@utrecht/component-library-css@$UTRECHT_CSS" utrecht)"
tokens="$(unpack "@nl-design-system-unstable/voorbeeld-design-tokens@$VOORBEELD_TOKENS" tokens)"
htmx="$(unpack "htmx.org@$HTMX" htmx)"

rm -rf "$vendor"
mkdir -p "$vendor/utrecht" "$vendor/voorbeeld" "$vendor/htmx"
cp "$utrecht/dist/html.css" "$utrecht/dist/index.css" "$utrecht/LICENSE.md" "$vendor/utrecht/"
cp "$tokens/dist/theme.css" "$tokens/LICENSE.md" "$vendor/voorbeeld/"
cp "$htmx/dist/htmx.min.js" "$htmx/LICENSE" "$vendor/htmx/"
cat >"$vendor/VERSIONS" <<VERSIONS
@utrecht/component-library-css $UTRECHT_CSS EUPL-1.2 (dist/html.css, dist/index.css)
@nl-design-system-unstable/voorbeeld-design-tokens $VOORBEELD_TOKENS EUPL-1.2 (dist/theme.css)
htmx.org $HTMX 0BSD (dist/htmx.min.js)
VERSIONS
echo "vendored into $vendor:"
cat "$vendor/VERSIONS"
