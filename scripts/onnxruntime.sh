#!/usr/bin/env bash
# Installs the onnxruntime shared library that the inference service loads. It ships inside the npm
# package onnxruntime-node; the package tarball (verified by npm against the registry's integrity
# hash) is unpacked once per machine into the tools cache, keyed by version, and the library is
# linked into ./bin as libonnxruntime.so.
# Usage: scripts/onnxruntime.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${BOURSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bourse-tools}
version=1.24.1
case "$(uname -s)-$(uname -m)" in
Linux-x86_64) platform=linux/x64 ;;
Linux-aarch64) platform=linux/arm64 ;;
*)
	echo "onnxruntime: no prebuilt library for $(uname -s)-$(uname -m) in onnxruntime-node" >&2
	exit 1
	;;
esac
dir="$cache/onnxruntime-$version-${platform/\//-}"
lib="$dir/libonnxruntime.so.1"
if [[ ! -f "$lib" ]]; then
	if ! command -v npm >/dev/null; then
		echo "onnxruntime: npm is needed to fetch the onnxruntime-node package (install Node.js)" >&2
		exit 1
	fi
	echo "tools: fetching onnxruntime $version (npm package onnxruntime-node, ~60 MB)"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
	tar -xzf "$tmp"/onnxruntime-node-"$version".tgz -C "$tmp" "package/bin/napi-v6/$platform/libonnxruntime.so.1"
	mkdir -p "$dir"
	mv "$tmp/package/bin/napi-v6/$platform/libonnxruntime.so.1" "$lib.partial"
	mv "$lib.partial" "$lib"
fi
mkdir -p bin
if [[ "$(readlink bin/libonnxruntime.so 2>/dev/null)" != "$lib" ]]; then
	ln -sfn "$lib" bin/libonnxruntime.so
	echo "tools: bin/libonnxruntime.so -> $lib"
fi
