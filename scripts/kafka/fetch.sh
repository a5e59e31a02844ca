#!/usr/bin/env bash
# Download the single-node Apache Kafka broker's jars (org.apache.kafka:kafka_2.13 and its
# runtime dependencies) from Maven Central into .cache/kafka/libs. Idempotent: a stamp file
# that records the pom's hash makes a second run return at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="${KAFKA_CACHE_DIR:-$repo/.cache/kafka}"
stamp="$dest/.stamp"
want="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && ls "$dest"/libs/kafka_2.13-*.jar >/dev/null 2>&1; then
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch.sh: mvn is required (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch.sh: java 17+ is required" >&2; exit 1; }
rm -rf "$dest/libs.tmp"
mkdir -p "$dest"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dest/libs.tmp"
rm -rf "$dest/libs"
mv "$dest/libs.tmp" "$dest/libs"
echo "$want" >"$stamp"
echo "fetch.sh: $(ls "$dest/libs" | wc -l) jars in $dest/libs"
