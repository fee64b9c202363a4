#!/usr/bin/env bash
# Runs every fuzz target of every module for the given time each (default 20s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20s}
for m in $(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p'); do
	for pkg in $(cd "$m" && go list ./...); do
		dir=$(cd "$m" && go list -f '{{.Dir}}' "$pkg")
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
			echo "== fuzz $pkg $target ($fuzztime)"
			(cd "$dir" && go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" .)
		done
	done
done
