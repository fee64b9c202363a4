#!/usr/bin/env bash
# `make bench BASELINE=<ref>`: the order-path Go benchmarks of a baseline commit and of the working tree
# in one run, interleaved so that both sides see the same machine load, then one table of medians.
# Usage: scripts/bench-compare.sh <ref> [benchtime]
#   BENCHCOUNT    rounds per side (default 5)
#   BENCH_FILTER  -bench regexp (default: the order-path benchmarks below)
#   BENCH_PKGS    package directories to run (default: book, exchange in process, grpcapi StreamOrders)
# A ratio new/base above 1.10 (ns/op, B/op or allocs/op) is flagged. Figures are only printed: the exit
# status says whether the comparison ran, not whether it regressed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ref=${1:?usage: bench-compare.sh <ref> [benchtime]}
benchtime=${2:-1s}
count=${BENCHCOUNT:-5}
filter=${BENCH_FILTER:-'^(BenchmarkAddCancel|BenchmarkExchangeCoreMix|BenchmarkExchangeSubmit|BenchmarkStreamOrders)$'}
pkgs=${BENCH_PKGS:-services/matching/internal/book services/matching/internal/exchange services/matching/internal/grpcapi}
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCHCOUNT must be a positive integer, not '$count'" >&2; exit 2; }

rev=$(git rev-parse --verify --quiet "$ref^{commit}") || { echo "bench: BASELINE=$ref is not a commit" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# An export, not a worktree: nothing is added to the repository's .git, so an interrupted run leaves
# nothing behind but the temporary directory.
mkdir "$tmp/base"
git archive "$rev" | tar -x -C "$tmp/base"
declare -A tree=([base]="$tmp/base" [new]="$root")

# Each side's test binary is built once; every round runs the same binaries.
echo "== order-path benchmarks: baseline $ref ($(git rev-parse --short "$rev")) vs working tree"
echo "   benchtime $benchtime, $count rounds each, interleaved; filter $filter"
# -test.list matches top-level names only: split the filter as go test does at its first '/'.
top=${filter%%/*}
sub=${filter#"$top"}
jobs=() # "pkg name": one top-level benchmark of one package, run on every side that has it
for pkg in $pkgs; do
	id=${pkg//\//_}
	for side in base new; do
		bin=$tmp/$side-$id.test
		: >"$tmp/$side-$id.list"
		if [[ ! -d ${tree[$side]}/$pkg ]]; then
			echo "   $pkg: not in the $side tree" >>"$tmp/notes"
			continue
		fi
		# Built from its module's directory, under that tree's go.work.
		mod=$pkg
		while [[ ! -f ${tree[$side]}/$mod/go.mod && $mod == */* ]]; do mod=${mod%/*}; done
		if ! (cd "${tree[$side]}/$mod" && go test -c -o "$bin" "./${pkg#"$mod"/}") >"$tmp/build" 2>&1; then
			echo "   $pkg: the $side tree does not build its tests (see above)" >>"$tmp/notes"
			echo "   $pkg ($side):" && sed 's/^/     /' "$tmp/build" | head -20
		elif [[ -x $bin ]]; then
			"$bin" -test.list "$top" | grep '^Benchmark' >"$tmp/$side-$id.list" || true
		fi
	done
	while read -r name; do
		jobs+=("$pkg $name")
		grep -qx "$name" "$tmp/base-$id.list" || echo "   $pkg $name: missing at baseline" >>"$tmp/notes"
		grep -qx "$name" "$tmp/new-$id.list" || echo "   $pkg $name: missing in the working tree" >>"$tmp/notes"
	done < <(sort -u "$tmp/base-$id.list" "$tmp/new-$id.list")
done

run_side() { # side pkg name round
	local side=$1 pkg=$2 name=$3 id=${2//\//_}
	grep -qx "$name" "$tmp/$side-$id.list" || return 0
	# From the package directory, as go test runs it (testdata is found relative to it).
	(cd "${tree[$side]}/$pkg" && "$tmp/$side-$id.test" -test.run '^$' -test.bench "^$name\$$sub" -test.benchmem \
		-test.benchtime "$benchtime" -test.count 1) >"$tmp/out" 2>&1 || {
		echo "   $pkg $name ($side, round $4) failed" >>"$tmp/notes"
		echo "   $pkg $name ($side, round $4) failed:" && grep -v '^Benchmark' "$tmp/out" | sed 's/^/     /' | head -20
	}
	grep '^Benchmark' "$tmp/out" | sed "s|^|$pkg |" >>"$tmp/$side.txt" || true
}

: >"$tmp/base.txt"
: >"$tmp/new.txt"
for ((r = 1; r <= count; r++)); do
	printf '   round %d/%d\n' "$r" "$count"
	for job in "${jobs[@]}"; do
		read -r pkg name <<<"$job"
		# One benchmark at a time, both sides back to back, and which side goes first alternates by
		# round: a change in the machine's load lands on both sides alike.
		if ((r % 2)); then
			run_side base "$pkg" "$name" "$r"; run_side new "$pkg" "$name" "$r"
		else
			run_side new "$pkg" "$name" "$r"; run_side base "$pkg" "$name" "$r"
		fi
	done
done

echo
awk -v n="$count" '
	function median(key, unit,    k, i, j, t, v) {
		k = cnt[key, unit]
		if (k == 0) return ""
		for (i = 1; i <= k; i++) v[i] = val[key, unit, i]
		for (i = 2; i <= k; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
		lo = v[1]; hi = v[k] # of the last median taken, for the spread
		return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
	}
	function spread(m) { return m > 0 ? sprintf(" ±%d%%", (hi - lo) * 50 / m + 0.5) : "" }
	function fmt(x) { return x == "" ? "-" : (x >= 100 || x == int(x) ? sprintf("%.0f", x) : sprintf("%.3g", x)) }
	function ratio(b, a) {
		if (b == "" || a == "") return "-"
		if (b == 0) return a == 0 ? "1.00" : "+inf"
		return sprintf("%.2f", a / b)
	}
	function worse(r) { return r == "+inf" || (r != "-" && r + 0 > 1.10) }
	FNR == 1 { side = (FILENAME ~ /base\.txt$/) ? "base" : "new" }
	{
		pkg = $1; name = $2; sub(/^.*\//, "", pkg)
		key = pkg " " name
		if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
		has[key, side] = 1
		for (i = 4; i < NF; i += 2) {
			u = $(i + 1)
			if (u != "ns/op" && u != "B/op" && u != "allocs/op") continue
			c = ++cnt[key SUBSEP side, u]; val[key SUBSEP side, u, c] = $i
		}
	}
	END {
		printf "%-48s %14s %14s %6s | %9s %9s %6s | %7s %7s %6s\n", "benchmark (median of " n ")", "ns/op base", "ns/op new", "ratio", "B/op base", "new", "ratio", "allocs", "new", "ratio"
		for (k = 1; k <= nk; k++) {
			key = order[k]
			if (!has[key, "base"]) { printf "%-48s missing at baseline; working tree %s ns/op\n", key, fmt(median(key SUBSEP "new", "ns/op")); continue }
			if (!has[key, "new"]) { printf "%-48s missing in the working tree; baseline %s ns/op\n", key, fmt(median(key SUBSEP "base", "ns/op")); continue }
			line = sprintf("%-48s", key); flag = ""
			split("ns/op B/op allocs/op", units, " ")
			for (u = 1; u <= 3; u++) {
				b = median(key SUBSEP "base", units[u]); bs = fmt(b) (u == 1 ? spread(b) : "")
				a = median(key SUBSEP "new", units[u]); as = fmt(a) (u == 1 ? spread(a) : ""); r = ratio(b, a)
				w = (u == 1) ? 14 : (u == 2 ? 9 : 7)
				line = line sprintf(" %" w "s %" w "s %6s", bs, as, r) (u < 3 ? " |" : "")
				if (worse(r)) { flag = flag " " units[u]; bad++ }
			}
			print line (flag == "" ? "" : "  <-- above 1.10:" flag)
		}
		if (nk == 0) print "no benchmark matched " FILENAME
		printf "\n%d ratio(s) above 1.10. ±: half the range of the rounds, in %% of the median; a ratio that is\n", bad
		printf "within the spread is noise until more rounds (BENCHCOUNT) or a quieter machine say otherwise.\n"
	}
' "$tmp/base.txt" "$tmp/new.txt"
if [[ -s $tmp/notes ]]; then
	echo
	echo "notes:"
	cat "$tmp/notes"
fi
