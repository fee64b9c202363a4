#!/usr/bin/env bash
# `make demo`: the whole platform in one story, told with the bourse CLI against a running `make run`:
# open a market, fund accounts (card deposits, fraud-checked), trade until orders fill, look at the
# book and the positions, withdraw, train a model, serve it, infer — and where to see each in Jaeger.
# Every step prints the command it runs. Run it again and it tells the story again (new ids).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
run=${BOURSE_RUN_DIR:-$root/.run}
keys=$run/keys
if [[ ! -s $keys/admin.key ]]; then
	echo "demo: no $keys/admin.key: start the platform first (make run, in another terminal)" >&2
	exit 3
fi
go build -o bin/bourse ./cmd/bourse

admin=$(head -n1 "$keys/admin.key")
alice=$(head -n1 "$keys/alice.key")
bob=$(head -n1 "$keys/bob.key")
tag=${BOURSE_DEMO_TAG:-$(date +%H%M%S)-$$} # names this telling of the story (ids, keys, the job)
traces=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# as KEY-NAME bourse-args...: show the command (keys by name, never their value), then run it.
as() {
	local who=$1 key
	shift
	case $who in admin) key=$admin ;; alice) key=$alice ;; bob) key=$bob ;; esac
	printf '$ bourse %s   # as %s\n' "$*" "$who"
	./bin/bourse --api-key "$key" "$@"
}
trace_of() { # label who args... — run with --trace and remember "label trace-id"
	local label=$1 who=$2 err id
	shift 2
	err=$(mktemp)
	as "$who" --trace "$@" 2>"$err" || { cat "$err" >&2; rm -f "$err"; return 1; }
	cat "$err" >&2
	id=$(sed -n 's/^trace \([0-9a-f]\{32\}\).*/\1/p' "$err" | tail -n1)
	rm -f "$err"
	traces+=("$label $id")
}

step "The platform: every service registered and passing in Consul"
as admin status

step "A market: ETH-USD in risk and matching; accounts alice and bob"
as admin symbols add ETH-USD --tick 0.05 --lot 0.0001 --reference-price 3000
as admin accounts open alice bob
as admin accounts credit bob ETH 5 --ref "demo-bob-eth-$tag"

step "Deposits by card: fraud-scored by inference, charged at the acquirer, credited in risk"
# (A first card deposit of 100,000 USD from a new account scores about 0.98 and is declined:
# fraud_suspected. These are ordinary.)
trace_of "deposit (client → payment → inference → acquirer → risk)" alice deposit 2000 USD --account alice --token tok_visa \
	--idempotency-key "demo-dep-alice-$tag"
as bob deposit 500 USD --account bob --token tok_visa --idempotency-key "demo-dep-bob-$tag"
as alice account alice

step "Trading: bob offers, alice buys (fills), a resting bid, a market order"
as bob order sell ETH-USD 0.5 --price 3000 --account bob --client-order-id "demo-ask-$tag"
trace_of "order (client → matching → risk)" alice order buy ETH-USD 0.2 --price 3005 --account alice --client-order-id "demo-bid-$tag"
as alice order buy ETH-USD 0.1 --price 2900 --account alice --client-order-id "demo-rest-$tag"
as alice order buy ETH-USD 0.1 --account alice --client-order-id "demo-mkt-$tag"

step "The book and the positions"
as alice book ETH-USD
as alice account alice
as bob account bob

step "A withdrawal: taken from risk first, then paid out by the acquirer"
as alice withdraw 100 USD --account alice --destination ba_alice --idempotency-key "demo-wd-alice-$tag"

step "Training: a fraud model on the workers (2 run under make run), served by inference"
job="demo-fraud-$tag"
as admin train --job-id "$job" --dataset fraud --model logistic --steps 120 --batch 128 --lr 0.05 --eval-interval 40 \
	--optimizer adam --export demo-fraud --plot "$run/$job.png"
as admin models list
# One deposit's features (pkg/fraud's layout): 1000 USD by card, a 30-day-old account, one deposit today
as admin infer demo-fraud --input '[[6.909,1,0,1,3.434,0,1,6.909]]'

step "Where to look"
for t in "${traces[@]}"; do
	printf '  %-55s bourse trace %s\n' "${t% *}" "${t##* }"
done
echo "  recent traces of a service:                             bourse traces --service payment --last 10m"
echo "  the training plot:                                      $run/$job.png"
