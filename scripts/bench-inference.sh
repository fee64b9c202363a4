#!/usr/bin/env bash
# Inference figures: for the iris model, in-process throughput (Go benchmark straight into the
# model repository: validation, batching, onnxruntime) next to the same model served over gRPC
# (ghz on loopback), with dynamic batching on (iris) and off (iris_nobatch), at several
# concurrencies. Prints served/in-process ratios, p50/p99, and executions per inference from
# /metrics. "vs live" compares with ServerLive, an RPC with no model behind it, on the same server:
# the host's gRPC ceiling (ghz shares the cores with the server). Every load run is bounded by a
# request count and a timeout. Figures only, no asserts.
# Usage: scripts/bench-inference.sh [benchtime]   (benchtime of the in-process benchmark, default 2s)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
benchtime=${1:-2s}
requests=${BENCH_INFERENCE_REQUESTS:-40000}
concurrencies=(8 32 128)
scripts/onnxruntime.sh >/dev/null
scripts/tools.sh ghz >/dev/null

out=$(mktemp -d)
pid=
cleanup() {
	if [[ -n "$pid" ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$out"
}
trap cleanup EXIT

# The model repository: iris as shipped (dynamic batching) and a copy without batching.
mkdir -p "$out/models"
cp -r services/inference/testdata/models/iris "$out/models/iris"
cp -r services/inference/testdata/models/iris "$out/models/iris_nobatch"
sed -i '/"dynamic_batching"/d' "$out/models/iris_nobatch/config.json"

echo "== inference: in-process (BenchmarkInProcess, benchtime $benchtime)"
(cd services/inference && go test -run '^$' -bench 'BenchmarkInProcess' -benchtime "$benchtime" ./internal/repository) >"$out/inproc.txt" 2>&1 || {
	cat "$out/inproc.txt" >&2
	exit 1
}
declare -A inproc
while read -r name _ _ _ rps unit _; do
	[[ "$unit" == "req/s" ]] || continue
	model=$(sed -n 's|.*model=\([a-z_]*\)/.*|\1|p' <<<"$name")
	c=$(sed -n 's|.*/c=\([0-9]*\).*|\1|p' <<<"$name")
	inproc[$model/$c]=$rps
done < <(grep '^BenchmarkInProcess' "$out/inproc.txt")
grep -E '^BenchmarkInProcess' "$out/inproc.txt"

go build -o "$out/inference" ./services/inference/cmd/inference
"$out/inference" --register=false --grpc-addr=127.0.0.1:0 --metrics-addr=127.0.0.1:0 --api-keys=bench=account:bench --rate-limit-account=off \
	--log-level=warn --model-repository="$out/models" --onnxruntime-lib=bin/libonnxruntime.so \
	--ready-file="$out/ready" >"$out/inference.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [[ -s "$out/ready" ]] && break; sleep 0.1; done
if [[ ! -s "$out/ready" ]]; then
	echo "bench-inference: the service did not start:" >&2
	cat "$out/inference.log" >&2
	exit 1
fi
addr=$(sed -n 's/.*"grpc_addr":"\([^"]*\)".*/\1/p' "$out/ready")
metrics=$(sed -n 's/.*"metrics_addr":"\([^"]*\)".*/\1/p' "$out/ready")

counter() { # name model
	curl -s "http://$metrics/metrics" | awk -v s="$1{model=\"$2\",version=\"1\"}" '$1 == s { print $2 }'
}

ghz_inference() { # call data concurrency — ghz output in $out/ghz.txt
	timeout 180 ./bin/ghz --insecure --call "inference.GRPCInferenceService/$1" -d "$2" \
		--metadata '{"authorization":"Bearer bench"}' -c "$3" -n "$requests" --connections=4 "$addr" >"$out/ghz.txt" 2>&1 || true
}

echo
echo "== inference: served over gRPC (ghz, $requests single-row requests per run, 4 connections)"
printf "%-28s %11s %12s %7s %8s %10s %10s %s\n" "run" "served rps" "in-proc rps" "ratio" "vs live" "p50" "p99" "codes"
declare -A ceiling
# The same server's gRPC ceiling with no model behind it: ghz and the server share this host's cores.
for c in "${concurrencies[@]}"; do
	ghz_inference ServerLive '{}' "$c"
	ceiling[$c]=$(awk '/Requests\/sec:/ { print $2 }' "$out/ghz.txt")
	awk -v label="ServerLive (no model) c=$c" '
		/Requests\/sec:/ { rps = $2 }
		/ 50 % in / { p50 = $4 " " $5 }
		/ 99 % in / { p99 = $4 " " $5 }
		END { printf "%-28s %11.0f %12s %7s %8s %10s %10s\n", label, rps, "-", "-", "-", p50, p99 }' "$out/ghz.txt"
done
for model in iris iris_nobatch; do
	data="{\"model_name\":\"$model\",\"inputs\":[{\"name\":\"X\",\"datatype\":\"FP32\",\"shape\":[1,4],\"contents\":{\"fp32_contents\":[5.9,3.0,5.1,1.8]}}]}"
	execs0=$(counter inference_exec_count_total "$model")
	count0=$(counter inference_count_total "$model")
	for c in "${concurrencies[@]}"; do
		ghz_inference ModelInfer "$data" "$c"
		awk -v label="$model c=$c" -v base="${inproc[$model/$c]:-0}" -v live="${ceiling[$c]:-0}" '
			/Requests\/sec:/ { rps = $2 }
			/ 50 % in / { p50 = $4 " " $5 }
			/ 99 % in / { p99 = $4 " " $5 }
			/^  \[/ { codes = codes $0 }
			END {
				gsub(/ +/, " ", codes)
				ratio = (base > 0) ? sprintf("%.2f", rps / base) : "n/a"
				vslive = (live > 0) ? sprintf("%.2f", rps / live) : "n/a"
				printf "%-28s %11.0f %12.0f %7s %8s %10s %10s%s\n", label, rps, base, ratio, vslive, p50, p99, codes
			}' "$out/ghz.txt"
	done
	execs=$(counter inference_exec_count_total "$model")
	count=$(counter inference_count_total "$model")
	awk -v m="$model" -v e="${execs:-0}" -v e0="${execs0:-0}" -v n="${count:-0}" -v n0="${count0:-0}" \
		'BEGIN { d = e - e0; printf "%-28s %d inferences in %d executions (%.1f rows per execution)\n", m " batching", n - n0, d, (d > 0) ? (n - n0) / d : 0 }'
done
