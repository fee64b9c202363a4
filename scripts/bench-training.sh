#!/usr/bin/env bash
# Training figures as one table: an MNIST job (MLP 784-128-10, 128 samples per worker per step)
# with 1, 2 and 4 real worker processes on loopback, then with 2 and 4 workers each in a network
# namespace of its own (root only): over a bridge, and through a relay in each namespace adding 0,
# 1 and 5 ms of one-way latency into every host. Columns: steps/s and samples/s between the first and
# the last step, weak-scaling efficiency against one worker, rank 0's bytes per step against the
# ring optimum 2(N-1)/N x |theta| x 4, and rank 0's allreduce time per step. Every run is a fixed
# number of steps. Figures only, no asserts.
# Usage: scripts/bench-training.sh   (BENCH_TRAIN=1: 400 steps per run instead of 60)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/services/training-coordinator"
steps=60
[[ -n ${BENCH_TRAIN:-} ]] && steps=400
filter='^BenchmarkTrainingScaling$'
if [[ $(id -u) == 0 ]]; then
	filter='^BenchmarkTraining(Scaling|AcrossHosts)$'
else
	echo "(not root: no network namespaces, loopback only)"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench "$filter" -benchmem -benchtime "${steps}x" ./test/ >"$out" 2>&1 || {
	cat "$out" >&2
	exit 1
}
awk -v steps="$steps" '
	BEGIN {
		printf "%d steps per run\n", steps
		printf "%-40s %9s %10s %10s %12s %12s %8s %12s\n", "run", "steps/s", "samples/s", "efficiency", "bytes/step", "optimum", "ratio", "allreduce"
	}
	/^BenchmarkTraining/ {
		name = $1
		sub(/^BenchmarkTraining/, "", name)
		sub(/-[0-9]+$/, "", name)
		delete m
		for (i = 3; i < NF; i++) m[$(i + 1)] = $i
		if (name == "Scaling/workers=1") base = m["samples/s"]
		# Across hosts: against the loopback run of one worker, when there was one.
		if (!("efficiency" in m) && base > 0 && match(name, /workers=[0-9]+/))
			m["efficiency"] = m["samples/s"] / (substr(name, RSTART + 8, RLENGTH - 8) * base)
		printf "%-40s %9.1f %10.0f %10s %12.0f %12.0f %8s %10.2fms\n", name, m["steps/s"], m["samples/s"],
			("efficiency" in m) ? sprintf("%.2f", m["efficiency"]) : "-", m["bytes/worker/step"], m["optimum-bytes/step"],
			("x-optimum" in m) ? sprintf("%.3f", m["x-optimum"]) : "-", m["allreduce-ms/step"]
	}
' "$out"
