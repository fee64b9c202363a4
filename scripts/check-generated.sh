#!/usr/bin/env bash
# Fails when pkg/gen differs from what buf generates from proto/ now.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh buf protoc-gen-go protoc-gen-go-grpc >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto buf.yaml buf.gen.yaml "$tmp/"
ln -s "$root/bin" "$tmp/bin"
(cd "$tmp" && "$root/bin/buf" generate)
if ! diff -r "$tmp/pkg/gen" pkg/gen >/dev/null; then
	echo "pkg/gen is stale: run 'make generate' and commit the result" >&2
	diff -r "$tmp/pkg/gen" pkg/gen | head -40 >&2 || true
	exit 1
fi
echo "generated code is up to date"
