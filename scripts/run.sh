#!/usr/bin/env bash
# `make run`: a Consul dev agent, Jaeger and every service, each its own process, loopback only.
# Logs go to .run/<name>.log. Ctrl-C stops everything, services first (they drain and deregister).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

run=${BOURSE_RUN_DIR:-$root/.run}
mkdir -p "$run"

# API keys live in $run/keys (mode 0700), never in flags, the environment or this script's output:
# the dev keys of the README examples (admin.key = dev-admin, alice.key, bob.key), a generated key per
# service identity (matching-risk.key: what matching presents to risk; payment-acquirer.key: what
# payment presents to the acquirer), and per service the keyring
# it accepts (<service>.keys, SHA-256 digests only). Each file is created once and kept; edit a
# keyring while the services run and they reload it (or send SIGHUP).
keys=$run/keys
mkdir -p "$keys" && chmod 700 "$keys"
keyfile() { # name value-if-absent
	[[ -s $keys/$1 ]] || (umask 077 && printf '%s\n' "$2" >"$keys/$1")
}
digest() { # key file -> sha256:<hex>
	echo "sha256:$(head -n1 "$keys/$1" | tr -d '\n' | sha256sum | cut -d' ' -f1)"
}
keyfile admin.key dev-admin
keyfile alice.key dev-alice
keyfile bob.key dev-bob
keyfile carol.key dev-carol
keyfile dave.key dev-dave
keyfile matching-risk.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
keyfile payment-acquirer.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
keyfile payment-risk.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
keyfile payment-inference.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
people="$(digest admin.key)=admin:ops
$(digest alice.key)=account:alice
$(digest bob.key)=account:bob
$(digest carol.key)=account:carol
$(digest dave.key)=account:dave"
keyfile discovery.keys "$people"
keyfile risk.keys "$people
$(digest matching-risk.key)=service:matching
$(digest payment-risk.key)=service:payment"
# A risk keyring from before payment existed gets payment's identity added once.
grep -q '=service:payment$' "$keys/risk.keys" || echo "$(digest payment-risk.key)=service:payment" >>"$keys/risk.keys"
keyfile payment.keys "$people"
keyfile matching.keys "$people"
# The training coordinator presents training-inference.key to inference to load exported models.
keyfile training-inference.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
keyfile inference.keys "$people
$(digest training-inference.key)=service:training"
# A keyring from before the coordinator exported models gets its key added once.
grep -q '=service:training$' "$keys/inference.keys" || echo "$(digest training-inference.key)=service:training" >>"$keys/inference.keys"
# payment scores deposits with the fraud model (which admits service:payment) with its own key.
grep -q '=service:payment$' "$keys/inference.keys" || echo "$(digest payment-inference.key)=service:payment" >>"$keys/inference.keys"
# Stripe's secret key, for payment's Stripe connector. stripe-mock takes any sk_test_<word> key
# (exactly three parts); a real one goes into this file the same way, never into flags or the
# environment.
keyfile stripe.key sk_test_boursedev
keyfile acquirer.keys "$people
$(digest payment-acquirer.key)=service:payment"
# Training workers present training-worker.key to the coordinator and to each other.
keyfile training-worker.key "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
keyfile training-coordinator.keys "$people
$(digest training-worker.key)=service:training-worker"
keyfile training-worker.keys "$people
$(digest training-worker.key)=service:training-worker"

# One line per service: name and the flags it runs with. Ports are the services' embedded defaults.
SERVICES=(
	"discovery --api-keys-file=$keys/discovery.keys"
	"risk --data-dir=$run/data/risk --api-keys-file=$keys/risk.keys"
	"matching --data-dir=$run/data/matching --api-keys-file=$keys/matching.keys --risk-api-key-file=$keys/matching-risk.key"
	"inference --model-repository=$run/models --api-keys-file=$keys/inference.keys"
	"acquirer --data-dir=$run/data/acquirer --api-keys-file=$keys/acquirer.keys"
	"payment --data-dir=$run/data/payment --api-keys-file=$keys/payment.keys --risk-api-key-file=$keys/payment-risk.key --acquirer-api-key-file=$keys/payment-acquirer.key --processors=acquirer,stripe --webhook-allow-private-addresses --fraud-model=fraud --inference-api-key-file=$keys/payment-inference.key --fraud-fail-open=USD:50000,EUR:50000,GBP:50000,CHF:50000,JPY:50000"
	"training-coordinator --data-dir=$run/data/training-coordinator --api-keys-file=$keys/training-coordinator.keys --model-repository=$run/models --inference-api-key-file=$keys/training-inference.key"
)
# The inference demo repository starts as the example models; versions added there are kept.
mkdir -p "$run/models" && cp -rn services/inference/testdata/models/. "$run/models/"
# payment's `fraud` model: generated (deterministically, ~2 s) from pkg/fraud's synthetic dataset.
if [[ ! -s $run/models/fraud/1/model.onnx ]]; then
	go run ./pkg/cmd/fraudmodel -out "$run/models/fraud"
fi

export BOURSE_CONSUL_ADDR=${BOURSE_CONSUL_ADDR:-127.0.0.1:8500}
export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4317}

# BOURSE_TLS=1: mutual TLS between the services, with a development CA and one certificate per
# service (its Consul name) in .run/tls/. The Consul agent gets a certificate too, for its gRPC
# health checks; `client` is for grpcurl and other tools.
tls=${BOURSE_TLS:-0}
consul_hcl='ports { dns = -1, grpc = -1, grpc_tls = -1 }'
grpcurl_tls=-plaintext
if [[ $tls == 1 ]]; then
	go run ./pkg/cmd/devcerts -dir "$run/tls" discovery risk matching inference acquirer payment training-coordinator training-worker consul client
	consul_hcl+=" tls { internal_rpc { ca_file = \"$run/tls/ca.crt\", cert_file = \"$run/tls/consul.crt\", key_file = \"$run/tls/consul.key\" } } enable_agent_tls_for_checks = true"
	grpcurl_tls="-cacert $run/tls/ca.crt -cert $run/tls/client.crt -key $run/tls/client.key"
fi
tls_flags() { # name
	if [[ $tls == 1 ]]; then echo "--tls-cert=$run/tls/$1.crt --tls-key=$run/tls/$1.key --tls-ca=$run/tls/ca.crt"; fi
}

pids=()
names=()
stop_all() {
	# Finish stopping even if the terminal's pipe is gone or Ctrl-C comes again.
	trap '' INT TERM PIPE
	trap - EXIT
	set +e
	echo
	echo "run: stopping"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
		# Services drain before the agent they deregister from goes away.
		for _ in $(seq 1 150); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "${pids[$i]}" 2>/dev/null || true
		echo "run: stopped ${names[$i]}"
	done
	exit 0
}
trap stop_all INT TERM EXIT

start() { # name command...
	local name=$1
	shift
	# Own session: a terminal Ctrl-C reaches only this script, which stops the rest in order.
	setsid "$@" >"$run/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
	echo "run: started $name (pid $!, log $run/$name.log)"
}

wait_for() { # what command...
	local what=$1
	shift
	for _ in $(seq 1 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "run: $what did not come up; see $run" >&2
	exit 1
}

start consul ./bin/consul agent -dev -bind=127.0.0.1 -client=127.0.0.1 -hcl "$consul_hcl" -log-level=warn
wait_for "consul" bash -c "./bin/consul info -http-addr=$BOURSE_CONSUL_ADDR | grep -q 'leader = true'"
start jaeger ./bin/jaeger --config deploy/local/jaeger.yaml
wait_for "jaeger" bash -c 'exec 3<>/dev/tcp/127.0.0.1/4317' 
# stripe-mock stands in for Stripe (stateless, answers from its embedded OpenAPI spec): payment's
# Stripe connector reaches it at BOURSE_PAYMENT_STRIPE_URL. Both listeners are named, or it opens
# HTTPS on every interface.
start stripe-mock ./bin/stripe-mock -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:12112
wait_for "stripe-mock" bash -c 'exec 3<>/dev/tcp/127.0.0.1/12111'
export BOURSE_PAYMENT_STRIPE_URL=${BOURSE_PAYMENT_STRIPE_URL:-http://127.0.0.1:12111}
export BOURSE_PAYMENT_STRIPE_KEY_FILE=${BOURSE_PAYMENT_STRIPE_KEY_FILE:-$keys/stripe.key}

echo "run: building services"
for line in "${SERVICES[@]}"; do
	read -r name flags <<<"$line"
	src=./services/$name/cmd/$name
	# A command kept in another service's module (the simulated acquirer lives in payment's).
	[[ -d $src ]] || src=$(ls -d ./services/*/cmd/"$name")
	go build -o "bin/$name" "$src"
done
for line in "${SERVICES[@]}"; do
	read -r name flags <<<"$line"
	rm -f "$run/$name.ready"
	# shellcheck disable=SC2086
	start "$name" "bin/$name" --ready-file="$run/$name.ready" $flags $(tls_flags "$name")
done
for line in "${SERVICES[@]}"; do
	read -r name _ <<<"$line"
	wait_for "$name" test -s "$run/$name.ready"
	echo "run: $name ready: $(cat "$run/$name.ready")"
done
# Callers find each other through Consul: wait until every service's health check passes there, or
# the first calls (matching asking risk, say) find nobody.
consul_passing() { # service — true once Consul lists a passing instance of it
	local host=${BOURSE_CONSUL_ADDR%:*} port=${BOURSE_CONSUL_ADDR##*:}
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET /v1/health/service/%s?passing=1 HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$host" >&3
	local answer
	answer=$(cat <&3)
	exec 3<&-
	local pattern='"ServiceName": ?"'"$1"'"'
	[[ $answer =~ $pattern ]]
}
for line in "${SERVICES[@]}"; do
	read -r name _ <<<"$line"
	wait_for "$name in Consul" consul_passing "$name"
done
# Training workers (BOURSE_TRAINING_WORKERS, default 2) on 127.0.0.1:7101, 7102, ...: they register
# in Consul as training-worker and take any job started at the coordinator.
go build -o bin/training-worker ./services/training-coordinator/cmd/training-worker
for ((i = 1; i <= ${BOURSE_TRAINING_WORKERS:-2}; i++)); do
	# shellcheck disable=SC2046
	start "training-worker-$i" bin/training-worker --grpc-addr=127.0.0.1:$((7100 + i)) --metrics-addr=127.0.0.1:0 \
		--worker-id="training-worker-$i" --api-keys-file="$keys/training-worker.keys" --api-key-file="$keys/training-worker.key" \
		$(tls_flags training-worker)
done

cat <<MSG

bourse is up.
  Consul UI      http://$BOURSE_CONSUL_ADDR/ui
  Traces         ./bin/bourse traces --service matching   (Jaeger query API http://127.0.0.1:16686/api; its web UI is not in this build)
  API keys       $keys/ (admin.key, alice.key, bob.key; <service>.keys are what each service accepts)
  try            ./bin/grpcurl $grpcurl_tls -H "authorization: Bearer \$(cat $keys/admin.key)" -d '{"name":"discovery"}' 127.0.0.1:7001 bourse.discovery.v1.DiscoveryService/Discover
Ctrl-C stops everything.
MSG

# Exit (and stop the rest) if any process dies.
wait -n "${pids[@]}"
echo "run: a process exited; see $run" >&2
