#!/usr/bin/env bash
# Development tools built from the Go module proxy into bin/tools/<name>-<version>,
# once per version (later calls print the cached path at once).
#
#   scripts/tools.sh helm        # prints the path of a helm binary
#   "$(scripts/tools.sh helm)" template deploy/helm/crowsnest
#
# The chart's tests do not need it: deploy/helm/chartcheck renders the chart
# with Helm's library (make helm-lint). The binary is for installing, and
# for comparing its `helm template` with the library's render.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/bin/tools"

build() { # name version package
	local out="$dir/$1-$2"
	if [[ ! -x "$out" ]]; then
		mkdir -p "$dir"
		echo "building $3@$2 (once; minutes on a small machine)" >&2
		# Outside the workspace: the tool's own go.mod decides its dependencies.
		GOWORK=off GOBIN="$dir/.gobin-$1-$2" CGO_ENABLED=0 go install -trimpath "$3@$2"
		mv "$dir/.gobin-$1-$2/$1" "$out"
		rmdir "$dir/.gobin-$1-$2"
	fi
	echo "$out"
}

case "${1:-}" in
helm) build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
*)
	echo "usage: $0 helm" >&2
	exit 2
	;;
esac
