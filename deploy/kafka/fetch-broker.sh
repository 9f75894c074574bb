#!/usr/bin/env bash
# Puts the Kafka broker's runtime classpath (pinned in deploy/kafka/pom.xml) into DEST,
# default .cache/kafka/lib under the repo root.
#
# Usage: deploy/kafka/fetch-broker.sh [DEST]
#
# Re-running is cheap: a stamp in DEST records the sha256 of the pom the jars came from, and
# nothing is fetched while it still matches. Set WERKBRUG_KAFKA_FETCH_FORCE=1 to fetch anyway.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
pom="$here/pom.xml"
dest="${1:-$repo_root/.cache/kafka/lib}"
stamp_name=".pom.sha256"

die() {
    echo "fetch-broker: $*" >&2
    exit 1
}

# Checked before the stamp: jars on disk are useless without a JVM to run them.
command -v java >/dev/null 2>&1 \
    || die "java not found on PATH; the Kafka broker needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"

want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [[ -z "${WERKBRUG_KAFKA_FETCH_FORCE:-}" && -f "$dest/$stamp_name" ]] \
    && [[ "$(cat "$dest/$stamp_name")" == "$want" ]] \
    && compgen -G "$dest/kafka_2.13-*.jar" >/dev/null; then
    exit 0
fi

command -v mvn >/dev/null 2>&1 \
    || die "mvn not found on PATH; it is needed once to fetch the broker from Maven Central (Debian: apt-get install maven)"

# Fetched into a sibling directory and swapped in at the end, so that an interrupted run or a
# version bump never leaves a half-filled or mixed-version classpath where the broker looks for it.
mkdir -p "$(dirname "$dest")"
dest="$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")"
staging="$dest.tmp.$$"
trap 'rm -rf "$staging"' EXIT
rm -rf "$staging"
mkdir -p "$staging"

echo "fetch-broker: resolving the Kafka broker from Maven Central into $dest" >&2
# stdout too goes to stderr: Maven 3.8 prints colour codes there even with -q and -B.
mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$staging" -DincludeScope=runtime >&2 \
    || die "mvn could not resolve the broker (see the output above)"

compgen -G "$staging/kafka_2.13-*.jar" >/dev/null \
    || die "mvn finished but no kafka_2.13 jar was copied into $staging"

echo "$want" >"$staging/$stamp_name"
rm -rf "$dest"
mv "$staging" "$dest"
trap - EXIT
echo "fetch-broker: $(find "$dest" -name '*.jar' | wc -l) jars in $dest" >&2
