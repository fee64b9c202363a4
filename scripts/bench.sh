#!/usr/bin/env bash
# `make bench`: Go benchmarks of every module (-benchmem), then ghz load over loopback against real
# processes. Every load run is bounded by a request count and a duration. Prints figures only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
benchtime=${1:-1s}
# BASELINE=<ref>: only the order-path benchmarks, the baseline commit and the working tree interleaved.
if [[ -n ${BASELINE:-} ]]; then
	exec scripts/bench-compare.sh "$BASELINE" "$benchtime"
fi
out=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$out"
}
trap cleanup EXIT

echo "== Go benchmarks (benchtime $benchtime)"
for m in ${BENCH_MODULES:-$(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')}; do
	(cd "$m" && go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./... 2>&1 | grep -E '^(Benchmark|pkg:|ok|FAIL)' || true)
done

free_port() { # a random high loopback port nothing answers on
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

echo
echo "== ghz: gRPC load on loopback"
http=$(free_port)
./bin/consul agent -dev -bind=127.0.0.1 -client=127.0.0.1 -log-level=error \
	-hcl "ports { http = $http, dns = -1, grpc = -1, grpc_tls = -1, serf_lan = $(free_port), serf_wan = $(free_port), server = $(free_port) }" >"$out/consul.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do ./bin/consul info -http-addr="127.0.0.1:$http" 2>/dev/null | grep -q 'leader = true' && break; sleep 0.1; done

start_service() { # name flags... — sets $addr; $api_keys, if set, replaces the admin-only keyring
	local name=$1
	shift
	go build -o "$out/$name" "./services/$name/cmd/$name"
	rm -f "$out/$name.ready"
	"$out/$name" --grpc-addr=127.0.0.1:0 --metrics-addr=127.0.0.1:0 --consul-addr="127.0.0.1:$http" \
		--api-keys="${api_keys:-bench=admin:bench}" --log-level=warn --ready-file="$out/$name.ready" "$@" >"$out/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 300); do [[ -s "$out/$name.ready" ]] && break; sleep 0.1; done
	if [[ ! -s "$out/$name.ready" ]]; then
		echo "bench: $name did not start:" >&2
		cat "$out/$name.log" >&2
		exit 1
	fi
	addr=$(sed -n 's/.*"grpc_addr":"\([^"]*\)".*/\1/p' "$out/$name.ready")
}

ghz_run() { # label addr concurrency requests call data
	local label=$1 addr=$2 c=$3 n=$4 call=$5 data=$6
	# -n bounds the run (ghz ignores -n when -z is given); timeout is the backstop.
	timeout 120 ./bin/ghz --insecure --call "$call" -d "$data" --metadata '{"authorization":"Bearer bench"}' \
		-c "$c" -n "$n" --connections=2 "$addr" >"$out/ghz.txt" 2>&1 || true
	awk -v label="$label" '
		/Requests\/sec:/ { rps = $2 }
		/ 50 % in / { p50 = $4 " " $5 }
		/ 99 % in / { p99 = $4 " " $5 }
		/^  \[/ { codes = codes $0 }
		END { gsub(/ +/, " ", codes); printf "%-34s rps=%-10s p50=%-10s p99=%-10s codes:%s\n", label, rps, p50, p99, codes }
	' "$out/ghz.txt"
}

grpc() { # addr method json
	./bin/grpcurl -plaintext -H 'authorization: Bearer bench' -d "$3" "$1" "$2" >/dev/null
}

start_service discovery
discovery=$addr
ghz_run "discovery Discover c=50" "$discovery" 50 20000 bourse.discovery.v1.DiscoveryService/Discover '{"name":"discovery"}'
ghz_run "discovery Discover c=8" "$discovery" 8 10000 bourse.discovery.v1.DiscoveryService/Discover '{"name":"discovery"}'

# Matching reaches risk as service:matching, with a key of its own read from a file, as make run wires it.
matching_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$matching_key" >"$out/matching-risk.key")
api_keys="bench=admin:bench,sha256:$(printf '%s' "$matching_key" | sha256sum | cut -d' ' -f1)=service:matching" \
	start_service risk --data-dir="$out/risk-data"
risk=$addr
grpc "$risk" bourse.risk.v1.RiskService/DefineAsset '{"asset":{"asset_id":"USD","scale":8}}'
grpc "$risk" bourse.risk.v1.RiskService/DefineAsset '{"asset":{"asset_id":"BTC","scale":8}}'
grpc "$risk" bourse.risk.v1.RiskService/DefineSymbol '{"symbol":{"symbol":"BTC-USD","base_asset":"BTC","quote_asset":"USD","price_scale":2,"qty_scale":4,"taker_fee_rate":"0.001"}}'
grpc "$risk" bourse.risk.v1.RiskService/OpenAccount '{"account_id":"bench"}'
grpc "$risk" bourse.risk.v1.RiskService/Credit '{"account_id":"bench","asset_id":"USD","amount":"1000000000","ref":"bench"}'
ghz_run "risk CheckOrder c=50" "$risk" 50 50000 bourse.risk.v1.RiskService/CheckOrder \
	'{"account_id":"bench","symbol":"BTC-USD","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","price":"100","quantity":"0.0001"}'
ghz_run "risk GetAccount c=8" "$risk" 8 2000 bourse.risk.v1.RiskService/GetAccount '{"account_id":"fees"}'

echo
echo "== matching over gRPC: every order checked by risk, journaled before it is answered"
go build -o "$out/matching-load" ./services/matching/cmd/matching-load
grpc "$risk" bourse.risk.v1.RiskService/OpenAccount '{"account_id":"alice"}'
grpc "$risk" bourse.risk.v1.RiskService/OpenAccount '{"account_id":"bob"}'
grpc "$risk" bourse.risk.v1.RiskService/Credit '{"account_id":"alice","asset_id":"USD","amount":"1000000000","ref":"bench-alice"}'
grpc "$risk" bourse.risk.v1.RiskService/Credit '{"account_id":"bob","asset_id":"BTC","amount":"10000000","ref":"bench-bob"}'
for mode in fsync no-fsync; do
	flags=()
	[[ $mode == no-fsync ]] && flags=(--unsafe-no-fsync)
	start_service matching --data-dir="$out/matching-$mode" --risk-addr="$risk" --risk-api-key-file="$out/matching-risk.key" "${flags[@]}"
	matching=$addr
	grpc "$matching" bourse.matching.v1.MatchingService/AddSymbol '{"symbol":{"symbol":"BTC-USD","tick_size":"0.01","lot_size":"0.0001"}}'
	ghz_run "matching SubmitOrder c=50 $mode" "$matching" 50 20000 bourse.matching.v1.MatchingService/SubmitOrder \
		'{"account_id":"alice","symbol":"BTC-USD","client_order_id":"ghz-'$mode'-{{.RequestNumber}}","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","price":"100","quantity":"0.0001"}'
	grpc "$matching" bourse.matching.v1.MatchingService/CancelAllOrders '{"account_id":"alice"}'
	"$out/matching-load" --addr "$matching" --api-key bench --streams 4 --orders 200000 --label "matching StreamOrders $mode" || true
	kill -TERM "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || true
done

# inference: in-process vs served (ghz) for the iris model, dynamic batching on and off.
echo
scripts/bench-inference.sh "$benchtime"

echo
echo "== training: an MNIST job with real worker processes (BENCH_TRAIN=1: longer runs)"
scripts/bench-training.sh
