#!/usr/bin/env bash
# Installs the pinned tools into ./bin. Versions live only in tools/<module>/go.mod; each binary is
# built once per machine into a cache keyed by its tools module and Go version, then linked into ./bin,
# so a fresh clone on a reused machine does not rebuild consul or jaeger.
# Usage: scripts/tools.sh [tool...]   (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${BOURSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bourse-tools}
mkdir -p bin "$cache"

# name | tools module | package | note for a cold build | -ldflags (optional)
tools_table() {
	cat <<'TABLE'
buf|buf|github.com/bufbuild/buf/cmd/buf|~1 min cold
protoc-gen-go|protoc|google.golang.org/protobuf/cmd/protoc-gen-go|seconds
protoc-gen-go-grpc|protoc|google.golang.org/grpc/cmd/protoc-gen-go-grpc|seconds
grpcurl|grpcurl|github.com/fullstorydev/grpcurl/cmd/grpcurl|~1 min cold
ghz|ghz|github.com/bojand/ghz/cmd/ghz|~1 min cold
consul|consul|github.com/hashicorp/consul|~7 min cold, prints progress
jaeger|jaeger|github.com/jaegertracing/jaeger/cmd/jaeger|~4 min cold, prints progress
kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver|5-20 min cold (CPU-bound), prints progress|-X k8s.io/component-base/version.gitVersion=v1.37.0
etcd|kube|go.etcd.io/etcd/server/v3|~1-2 min cold
stripe-mock|stripemock|github.com/stripe/stripe-mock|~1 min cold
TABLE
}

build_with_progress() { # name dir pkg out ldflags
	local name=$1 dir=$2 pkg=$3 out=$4 ldflags=${5:-} start=$SECONDS next=30
	# Tools modules are deliberately outside go.work: their dependency graphs clash with ours.
	(cd "tools/$dir" && GOWORK=off go build -trimpath -ldflags="$ldflags" -o "$out" "$pkg") &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - start >= next)) && kill -0 "$pid" 2>/dev/null; then
			echo "tools:   still building $name ($((SECONDS - start)) s)"
			next=$((next + 30))
		fi
	done
	wait "$pid"
}

install_tool() { # name dir pkg note ldflags
	local name=$1 dir=$2 pkg=$3 note=$4 ldflags=${5:-}
	local key
	key=$( { cat "tools/$dir/go.mod" "tools/$dir/go.sum"; echo "$pkg$ldflags"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-16)
	local target="$cache/$name-$key/$name"
	if [[ ! -x "$target" ]]; then
		echo "tools: building $name from tools/$dir ($note)"
		mkdir -p "$(dirname "$target")"
		build_with_progress "$name" "$dir" "$pkg" "$target.partial" "$ldflags"
		mv "$target.partial" "$target"
	fi
	if [[ "$(readlink "bin/$name" 2>/dev/null)" != "$target" ]]; then
		ln -sfn "$target" "bin/$name"
		echo "tools: bin/$name -> $target"
	fi
}

wanted=("$@")
count=0
while IFS='|' read -r name dir pkg note ldflags; do
	if ((${#wanted[@]} == 0)) || [[ " ${wanted[*]} " == *" $name "* ]]; then
		install_tool "$name" "$dir" "$pkg" "$note" "$ldflags"
		count=$((count + 1))
	fi
done < <(tools_table)
# onnxruntime's shared library (for the inference service) comes from an npm package, not Go.
if ((${#wanted[@]} == 0)) || [[ " ${wanted[*]} " == *" onnxruntime "* ]]; then
	scripts/onnxruntime.sh
fi
if ((${#wanted[@]} == 0)); then
	echo "tools: $count pinned tools ready in ./bin (cache $cache)"
fi
