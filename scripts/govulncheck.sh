#!/usr/bin/env bash
# govulncheck over every module of the workspace, offline: vuln.go.dev is not
# reachable from CI, so the vulnerability database is built locally from the
# golang.org/x/vulndb module (its data/osv reports, fetched through the Go
# module proxy like any dependency) with vulndb's own cmd/indexdb, into the
# v1 layout govulncheck's -db file:// reads (index/db.json,
# index/modules.json, ID/<id>.json). Tools and the database are cached in
# bin/tools per version.
#
# The scan runs with the Go release the images are built with (GOTOOLCHAIN
# in deploy/docker/Dockerfile.processor): the standard library's
# vulnerabilities are those of the toolchain that builds what ships.
#
# Exit status: 0 when no module calls a vulnerable function; 3 (govulncheck's)
# when one does. Vulnerable modules whose vulnerable code is not called are
# listed (-show verbose) but do not fail. Refresh the database by bumping
# VULNDB_VERSION to a newer golang.org/x/vulndb pseudo-version:
#   go list -m -json golang.org/x/vulndb@master
#   make vulncheck [VULNDB_VERSION=...] [MODULES="bus sinks"]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

vuln_version=${GOVULNCHECK_VERSION:-v1.9.0}
vulndb_version=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
tools=${CROWSNEST_TOOLS_DIR:-$root/bin/tools}
toolchain=$(sed -n 's/^ENV GOTOOLCHAIN=\(go[0-9.]*\)$/\1/p' deploy/docker/Dockerfile.processor)
if [[ -z $toolchain ]]; then
	echo "govulncheck: no ENV GOTOOLCHAIN=goX.Y.Z in deploy/docker/Dockerfile.processor" >&2
	exit 2
fi

install() { # name package@version
	local bin=$tools/$1
	if [[ ! -x $bin ]]; then
		mkdir -p "$tools"
		echo "govulncheck: installing $2 into $tools (once)" >&2
		local tmp
		tmp=$(mktemp -d)
		GOBIN=$tmp GOWORK=off GOFLAGS= go install "$2"
		mv "$tmp/$(basename "${2%@*}")" "$bin"
		rm -rf "$tmp"
	fi
	echo "$bin"
}
govulncheck=$(install "govulncheck-$vuln_version" "golang.org/x/vuln/cmd/govulncheck@$vuln_version")
indexdb=$(install "indexdb-$vulndb_version" "golang.org/x/vulndb/cmd/indexdb@$vulndb_version")

db=$tools/vulndb-$vulndb_version
if [[ ! -f $db/index/modules.json ]]; then
	src=$(cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$vulndb_version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ ! -d $src/data/osv ]]; then
		echo "govulncheck: golang.org/x/vulndb@$vulndb_version has no data/osv" >&2
		exit 2
	fi
	echo "govulncheck: building the database from $(ls "$src/data/osv" | wc -l) reports into $db (once)" >&2
	rm -rf "$db.tmp"
	"$indexdb" -vulns "$src/data/osv" -out "$db.tmp"
	mv "$db.tmp" "$db"
fi

if [[ -n ${MODULES:-} ]]; then
	read -r -a modules <<<"$MODULES"
else
	mapfile -t modules < <(go list -m -f '{{.Dir}}' | sed "s|^$root/||")
fi

echo "govulncheck $vuln_version, database golang.org/x/vulndb@$vulndb_version, $toolchain" >&2
failed=()
for m in "${modules[@]}"; do
	echo "== $m" >&2
	rc=0
	GOTOOLCHAIN=$toolchain "$govulncheck" -C "$root/$m" -db "file://$db" -show verbose ./... || rc=$?
	case $rc in
	0) ;;
	3) failed+=("$m") ;;
	*) echo "govulncheck: $m: exit $rc" >&2; exit "$rc" ;;
	esac
done
if ((${#failed[@]})); then
	echo "govulncheck: reachable vulnerabilities in: ${failed[*]} (fix, or upgrade; docs/SECURITY.md says how to document one that cannot be)" >&2
	exit 3
fi
echo "govulncheck: no reachable vulnerabilities in ${#modules[@]} modules" >&2
