#!/usr/bin/env bash
# A CycloneDX SBOM (JSON) per image, from the Go module graph of exactly the
# package and build constraints each Dockerfile builds (CGO_ENABLED=0,
# linux, the Dockerfiles' GOTOOLCHAIN), standard library included. Then deploy/imagecheck's TestSBOMs
# checks each file parses, names the Dockerfile's package and lists the
# dependencies that image must carry.
#   make sbom [SBOM_DIR=bin/sbom] [GOARCH=amd64]
set -euo pipefail
cd "$(dirname "$0")/.."

out=${SBOM_DIR:-bin/sbom}
tool_version=v1.10.0
tools=${CROWSNEST_TOOLS_DIR:-$PWD/bin/tools}
tool=$tools/cyclonedx-gomod-$tool_version
if [[ ! -x $tool ]]; then
	mkdir -p "$tools"
	echo "sbom: installing cyclonedx-gomod $tool_version into $tools (once)"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	GOBIN=$tmp GOWORK=off go install "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$tool_version"
	mv "$tmp/cyclonedx-gomod" "$tool"
fi

# The Go release the images build with (their GOTOOLCHAIN): the standard
# library in the SBOM must be the one that ships.
toolchain=$(sed -n 's/^ENV GOTOOLCHAIN=\(go[0-9.]*\)$/\1/p' deploy/docker/Dockerfile.processor)
if [[ -z $toolchain ]]; then
	echo "sbom: no ENV GOTOOLCHAIN=goX.Y.Z in deploy/docker/Dockerfile.processor" >&2
	exit 2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
# image  module-dir  main-package-in-module (as in deploy/docker/Dockerfile.<image>)
while read -r image module main; do
	args=(app -json -std -licenses -output "$out/$image.cdx.json")
	[[ $main != . ]] && args+=(-main "$main")
	GOTOOLCHAIN=$toolchain CGO_ENABLED=0 GOOS=linux GOARCH=${GOARCH:-amd64} "$tool" "${args[@]}" "$module"
	echo "sbom: $out/$image.cdx.json"
done <<'TABLE'
collector collectors cmd/crowsnest-collector
processor processor  cmd/crowsnest-processor
sink      sinks      cmd/crowsnest-sink
crowsnest cli        .
TABLE

cd deploy/imagecheck
CROWSNEST_SBOM_DIR=$out go test -count=1 -run '^TestSBOMs$' .
