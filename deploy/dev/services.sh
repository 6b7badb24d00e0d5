#!/usr/bin/env bash
# Starts, stops and reports the stores crowsnest's tests and local runs use:
#   Elasticsearch  the real server: Elastic's integ-test-zip from Maven Central,
#                  run as an unprivileged user on 127.0.0.1:$CROWSNEST_DEV_ES_PORT (9200)
#   ClickHouse     deploy/dev/chdb-server: ClickHouse's HTTP interface in front of
#                  the ClickHouse engine from chdb-core, on 127.0.0.1:$CROWSNEST_DEV_CH_PORT (8123)
# It installs what is missing, keeps downloads cached (Maven's ~/.m2, pip's cache),
# keeps state and logs under .services/ and is safe to call again or after a crash.
# docs/services.md says what each service covers, what it does not, and its costs.
#
# usage: deploy/dev/services.sh up|down|status|env|test|reset [elasticsearch|clickhouse]
set -euo pipefail

DEV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$DEV_DIR/../.." && pwd)
STATE_DIR=${CROWSNEST_DEV_SERVICES_DIR:-$REPO_ROOT/.services}
LOG_DIR=$STATE_DIR/logs

ES_VERSION=${CROWSNEST_DEV_ES_VERSION:-8.19.21}
ES_PORT=${CROWSNEST_DEV_ES_PORT:-9200}
ES_HEAP=${CROWSNEST_DEV_ES_HEAP:-512m}
ES_USER=${CROWSNEST_DEV_ES_USER:-crowsnest-es}
ES_GAV=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
ES_START_TIMEOUT=${CROWSNEST_DEV_ES_START_TIMEOUT:-180}

CH_PORT=${CROWSNEST_DEV_CH_PORT:-8123}
CH_SERVER=$DEV_DIR/chdb-server/chdb_http_server.py
CH_REQUIREMENTS=$DEV_DIR/chdb-server/requirements.txt
CH_DIR=$STATE_DIR/clickhouse
CH_PID=$CH_DIR/server.pid
CH_START_TIMEOUT=${CROWSNEST_DEV_CH_START_TIMEOUT:-120}
VENV=${CROWSNEST_DEV_VENV:-$DEV_DIR/.venv}
# pip's own cache keeps nothing here (the registry's answers are not cacheable),
# so the pinned wheels are kept in a wheelhouse of our own.
WHEELS=${CROWSNEST_DEV_WHEEL_CACHE:-$HOME/.cache/crowsnest/wheels}

MAVEN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

say() { printf '%s\n' "$*" >&2; }
die() { say "services.sh: $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }

# need CMD DEBIAN_PACKAGE: installs the package when CMD is missing.
APT_UPDATED=
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	[ "$(id -u)" -eq 0 ] || die "$1 is missing; install the Debian package $2"
	say "installing $2 (for $1)"
	apt_install "$2"
}
apt_install() {
	if [ -z "$APT_UPDATED" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# alive PID: running, and not a zombie waiting to be reaped.
alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	local state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# pids_matching TEXT: processes whose command line contains TEXT (a path
# unique to this checkout, so only our own processes match).
pids_matching() {
	MATCH="$1" python3 - <<'EOF'
import os
match, me = os.environ["MATCH"], os.getpid()
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == me:
        continue
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        continue
    if match in cmd:
        print(pid)
EOF
}

# port_owner PORT: pid listening on 127.0.0.1/any PORT, "unknown" if the
# port is taken by a process we cannot see, nothing if the port is free.
port_owner() {
	PORT="$1" python3 - <<'EOF'
import os
port, inodes = int(os.environ["PORT"]), set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        f = row.split()
        if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{f[9]}]")
if inodes:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                print(pid)
                break
        except OSError:
            pass
    else:
        print("unknown")
EOF
}

cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-160; }

# stop_pids NAME SECONDS PID...: SIGTERM, then SIGKILL after SECONDS.
stop_pids() {
	local name=$1 wait=$2
	shift 2
	local pids=() p
	for p in $(printf '%s\n' "$@" | sort -u); do alive "$p" && pids+=("$p"); done
	[ ${#pids[@]} -gt 0 ] || return 0
	say "$name: stopping pid ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	local deadline=$((SECONDS + wait))
	while [ $SECONDS -lt $deadline ]; do
		local left=()
		for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
		[ ${#left[@]} -eq 0 ] && return 0
		sleep 0.2
	done
	for p in "${pids[@]}"; do
		if alive "$p"; then
			say "$name: pid $p did not stop in ${wait}s; killing it"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
}

# free_port NAME PORT_VARIABLE OURS: clears the port of a leftover process of
# ours (its command line contains OURS); refuses when someone else holds it.
free_port() {
	local name=$1 port_var=$2 ours=$3 owner port
	port=${!port_var}
	owner=$(port_owner "$port")
	[ -z "$owner" ] && return 0
	if [ "$owner" != unknown ] && cmdline "$owner" | grep -qF -- "$ours"; then
		say "$name: port $port is held by our earlier process $owner; stopping it"
		stop_pids "$name" 30 "$owner"
		return 0
	fi
	die "$name: port $port is in use by pid $owner ($(cmdline "$owner" 2>/dev/null || true)); set CROWSNEST_$port_var to another port"
}

http_get() { curl -fsS --max-time "${2:-5}" "$1" 2>/dev/null; }

# wait_healthy CHECK PID SECONDS: until CHECK succeeds; fails when PID exits
# or time runs out.
wait_healthy() {
	local check=$1 pid=$2 deadline=$((SECONDS + $3))
	until "$check"; do
		alive "$pid" || return 1
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.5
	done
}

# ---------------------------------------------------------------- Elasticsearch

es_root() {
	# ES refuses to run as root, so as root it runs as $ES_USER, who must be
	# able to reach its files. A checkout under a private directory (such as
	# /root) gets its Elasticsearch files in /var/lib instead.
	if [ "$(id -u)" -ne 0 ]; then
		echo "$STATE_DIR/elasticsearch"
	elif id "$ES_USER" >/dev/null 2>&1 && runuser -u "$ES_USER" -- test -x "$STATE_DIR" 2>/dev/null; then
		echo "$STATE_DIR/elasticsearch"
	else
		echo "/var/lib/crowsnest-es/$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)"
	fi
}

es_vars() {
	ES_ROOT=$(es_root)
	ES_HOME=$ES_ROOT/dist/elasticsearch-$ES_VERSION
	ES_CONF=$ES_ROOT/config
	ES_PID=$ES_ROOT/run/elasticsearch.pid
	if [ "$ES_ROOT" = "$STATE_DIR/elasticsearch" ]; then
		ES_LOGS=$LOG_DIR/elasticsearch
	else
		ES_LOGS=$ES_ROOT/logs # linked from $LOG_DIR/elasticsearch
	fi
}

es_java_home() {
	if [ -n "${CROWSNEST_DEV_ES_JAVA_HOME:-}" ]; then
		echo "$CROWSNEST_DEV_ES_JAVA_HOME"
		return
	fi
	local c candidates=()
	[ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
	command -v javac >/dev/null 2>&1 && candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")")
	for c in /usr/lib/jvm/*; do candidates+=("$c"); done
	for c in "${candidates[@]}"; do
		[ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] && [ -x "$c/bin/jar" ] || continue
		local v
		v=$("$c/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
		[ -n "$v" ] && [ "${v%%.*}" -ge 17 ] 2>/dev/null && { echo "$c"; return; }
	done
	return 1
}

es_fetch() {
	local zip=$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
	if [ ! -s "$zip" ]; then
		need mvn maven
		local t
		t=$(now)
		say "elasticsearch: fetching $ES_GAV from Maven Central"
		mkdir -p "$ES_ROOT/download"
		mkdir -p "$LOG_DIR"
		if ! mvn -B "$MAVEN_DEPENDENCY_PLUGIN:copy" -Dartifact="$ES_GAV" -DoutputDirectory="$ES_ROOT/download" \
			>"$LOG_DIR/maven.log" 2>&1; then
			tail -n 20 "$LOG_DIR/maven.log" >&2
			die "elasticsearch: could not fetch $ES_GAV (see $LOG_DIR/maven.log)"
		fi
		zip=$ES_ROOT/download/elasticsearch-$ES_VERSION.zip
		say "elasticsearch: fetched in $(since "$t")"
	fi
	echo "$zip"
}

es_install() {
	[ -x "$ES_HOME/bin/elasticsearch" ] && return 0
	local zip t tmp
	zip=$(es_fetch)
	t=$(now)
	tmp=$ES_ROOT/dist/.unpack.$$
	rm -rf "$tmp" && mkdir -p "$tmp"
	# Python's zipfile, so that unzip need not be installed; it restores the modes.
	python3 - "$zip" "$tmp" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = info.external_attr >> 16
        if mode and not info.is_dir():
            os.chmod(path, mode & 0o777)
EOF
	chmod -R a+rX "$tmp"
	mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
	rm -rf "$tmp" "$ES_ROOT/download"
	say "elasticsearch: unpacked in $(since "$t")"
}

# The integ-test-zip has no rest-root module, so GET / answers 405; this
# plugin serves it. Built against the distribution's own jars.
es_build_plugin() {
	local java_home=$1 src=$DEV_DIR/elasticsearch/root-endpoint
	local plugin_dir=$ES_HOME/plugins/crowsnest-root-endpoint stamp_file=$ES_HOME/.crowsnest-root-endpoint.stamp
	local stamp
	stamp=$(cat "$src"/* | sha256sum | cut -c1-16)
	[ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && [ -d "$plugin_dir" ] && return 0
	local build
	build=$(mktemp -d)
	"$java_home/bin/javac" --release 17 -nowarn -d "$build/classes" -cp "$ES_HOME/lib/*" "$src/RootEndpointPlugin.java" >&2 ||
		die "elasticsearch: could not compile the root-endpoint plugin"
	rm -rf "$plugin_dir" && mkdir -p "$plugin_dir"
	"$java_home/bin/jar" cf "$plugin_dir/crowsnest-root-endpoint.jar" -C "$build/classes" .
	sed "s/@ES_VERSION@/$ES_VERSION/g" "$src/plugin-descriptor.properties.in" >"$plugin_dir/plugin-descriptor.properties"
	chmod -R a+rX "$plugin_dir"
	rm -rf "$build"
	echo "$stamp" >"$stamp_file"
}

es_configure() {
	[ "$ES_LOGS" = "$LOG_DIR/elasticsearch" ] && [ -L "$ES_LOGS" ] && rm -f "$ES_LOGS"
	mkdir -p "$ES_CONF" "$ES_ROOT/data" "$ES_ROOT/tmp" "$ES_ROOT/run" "$ES_LOGS" "$LOG_DIR"
	local f
	for f in jvm.options log4j2.properties; do
		cp "$ES_HOME/config/$f" "$ES_CONF/$f"
	done
	mkdir -p "$ES_CONF/jvm.options.d"
	cat >"$ES_CONF/elasticsearch.yml" <<EOF
# Written by deploy/dev/services.sh on every start; edit the script, not this file.
cluster.name: crowsnest-dev
node.name: crowsnest-dev-1
path.data: $ES_ROOT/data
path.logs: $ES_LOGS
network.host: 127.0.0.1
http.port: $ES_PORT
discovery.type: single-node
# Development only: no TLS, no users.
xpack.security.enabled: false
# The disk may be fairly full on a development machine or in CI.
cluster.routing.allocation.disk.threshold_enabled: false
# Tests delete their indices by wildcard.
action.destructive_requires_name: false
EOF
	if [ "$ES_LOGS" != "$LOG_DIR/elasticsearch" ]; then
		rm -rf "$LOG_DIR/elasticsearch"
		ln -s "$ES_LOGS" "$LOG_DIR/elasticsearch"
	fi
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$ES_USER:" "$ES_CONF" "$ES_ROOT/data" "$ES_ROOT/tmp" "$ES_ROOT/run" "$ES_LOGS"
	fi
}

es_ensure_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	id "$ES_USER" >/dev/null 2>&1 && return 0
	say "elasticsearch: creating system user $ES_USER (Elasticsearch refuses to run as root)"
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER"
}

es_healthy() {
	http_get "http://127.0.0.1:$ES_PORT/_cluster/health" 3 | grep -qE '"status":"(green|yellow)"'
}

es_up() {
	need curl curl
	need python3 python3
	es_ensure_user
	es_vars
	local pid
	pid=$(cat "$ES_PID" 2>/dev/null || true)
	# Running, or still starting (another `up` at the same time).
	if alive "$pid" && wait_healthy es_healthy "$pid" "$ES_START_TIMEOUT"; then
		say "elasticsearch: already running (pid $pid) on http://127.0.0.1:$ES_PORT"
		return 0
	fi
	if [ -n "$pid" ] && ! alive "$pid"; then
		say "elasticsearch: removing stale pid file (pid $pid is gone)"
		rm -f "$ES_PID"
	fi
	# Leftovers of an earlier run of this checkout (a lost pid file, a crash);
	# they share the data directory, so at most one runs.
	free_port elasticsearch ES_PORT "-Des.path.home=$ES_HOME"
	stop_pids elasticsearch 30 $(pids_matching "-Des.path.home=$ES_HOME") ${pid:+"$pid"}

	local java_home
	java_home=$(es_java_home) || {
		need javac openjdk-17-jdk-headless
		java_home=$(es_java_home) || die "elasticsearch: no JDK >= 17 with javac found; set CROWSNEST_DEV_ES_JAVA_HOME"
	}
	mkdir -p "$ES_ROOT/dist"
	chmod a+rx "$ES_ROOT" "$ES_ROOT/dist"
	es_install
	es_build_plugin "$java_home"
	es_configure

	local t run=()
	t=$(now)
	[ "$(id -u)" -eq 0 ] && run=(runuser -u "$ES_USER" --)
	say "elasticsearch: starting $ES_VERSION with $java_home (heap $ES_HEAP)"
	# -d daemonizes once the node has started; -p names the server's pid.
	if ! "${run[@]}" env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME="$ES_ROOT/tmp" \
		ES_JAVA_HOME="$java_home" ES_PATH_CONF="$ES_CONF" ES_TMPDIR="$ES_ROOT/tmp" \
		ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
		"$ES_HOME/bin/elasticsearch" -d -p "$ES_PID" >>"$LOG_DIR/elasticsearch.out" 2>&1 </dev/null; then
		say "elasticsearch: failed to start; last lines of $LOG_DIR/elasticsearch.out:"
		tail -n 30 "$LOG_DIR/elasticsearch.out" >&2
		return 1
	fi
	pid=$(cat "$ES_PID" 2>/dev/null || true)
	if ! wait_healthy es_healthy "$pid" "$ES_START_TIMEOUT"; then
		alive "$pid" && die "elasticsearch: not healthy after ${ES_START_TIMEOUT}s; see $LOG_DIR/elasticsearch/crowsnest-dev.log"
		say "elasticsearch: the server exited; last lines of $LOG_DIR/elasticsearch/crowsnest-dev.log:"
		tail -n 30 "$ES_LOGS/crowsnest-dev.log" >&2 2>/dev/null || true
		return 1
	fi
	say "elasticsearch: up in $(since "$t") (pid $(cat "$ES_PID")) on http://127.0.0.1:$ES_PORT"
}

es_down() {
	es_vars
	local pid
	pid=$(cat "$ES_PID" 2>/dev/null || true)
	stop_pids elasticsearch 60 ${pid:+"$pid"} $(pids_matching "-Des.path.home=$ES_HOME")
	rm -f "$ES_PID"
}

es_status() {
	es_vars
	local pid body
	pid=$(cat "$ES_PID" 2>/dev/null || true)
	if alive "$pid" && body=$(http_get "http://127.0.0.1:$ES_PORT/" 3); then
		local version health rss
		version=$(printf '%s' "$body" | sed -n 's/.*"number":"\([^"]*\)".*/\1/p')
		health=$(http_get "http://127.0.0.1:$ES_PORT/_cluster/health" 3 | sed -n 's/.*"status":"\([^"]*\)".*/\1/p')
		rss=$(awk '/VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status")
		echo "elasticsearch: running  pid $pid  http://127.0.0.1:$ES_PORT  version $version  health $health  rss $rss"
	elif alive "$pid"; then
		echo "elasticsearch: starting or unhealthy  pid $pid  http://127.0.0.1:$ES_PORT"
	else
		echo "elasticsearch: stopped"
	fi
}

# ---------------------------------------------------------------- ClickHouse

ch_venv() {
	local stamp=$VENV/.requirements.sha256 want
	want=$( (sha256sum "$CH_REQUIREMENTS"; python3 --version) | sha256sum | cut -c1-16)
	if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	local t
	t=$(now)
	if [ ! -x "$VENV/bin/python" ]; then
		if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
			[ "$(id -u)" -eq 0 ] || die "python3 has no venv module; install the Debian package python3-venv"
			apt_install python3-venv
		fi
		python3 -m venv "$VENV"
	fi
	say "clickhouse: installing $(grep -m1 '^chdb-core' "$CH_REQUIREMENTS") and its pinned requirements into $VENV"
	mkdir -p "$WHEELS"
	if ! "$VENV/bin/python" -m pip install -q --no-compile --no-index --find-links "$WHEELS" -r "$CH_REQUIREMENTS" >/dev/null 2>&1; then
		say "clickhouse: downloading the missing wheels into $WHEELS"
		"$VENV/bin/python" -m pip download -q --only-binary=:all: -d "$WHEELS" -r "$CH_REQUIREMENTS" >&2 ||
			die "clickhouse: pip download failed"
		"$VENV/bin/python" -m pip install -q --no-compile --no-index --find-links "$WHEELS" -r "$CH_REQUIREMENTS" >&2 ||
			die "clickhouse: pip install failed"
	fi
	echo "$want" >"$stamp"
	say "clickhouse: environment ready in $(since "$t")"
}

ch_healthy() { [ "$(http_get "http://127.0.0.1:$CH_PORT/ping" 2)" = "Ok." ]; }

ch_up() {
	need curl curl
	need python3 python3
	ch_venv
	mkdir -p "$CH_DIR/data" "$LOG_DIR"
	local pid
	pid=$(cat "$CH_PID" 2>/dev/null || true)
	if alive "$pid" && wait_healthy ch_healthy "$pid" "$CH_START_TIMEOUT"; then
		say "clickhouse: already running (pid $pid) on http://127.0.0.1:$CH_PORT"
		return 0
	fi
	if [ -n "$pid" ] && ! alive "$pid"; then
		say "clickhouse: removing stale pid file (pid $pid is gone)"
		rm -f "$CH_PID"
	fi
	free_port clickhouse CH_PORT "$CH_SERVER"
	stop_pids clickhouse 30 $(pids_matching "$CH_SERVER") ${pid:+"$pid"}

	local t
	t=$(now)
	# setsid: the server outlives the shell (and make) that started it.
	PYTHONPYCACHEPREFIX="$STATE_DIR/pycache" setsid "$VENV/bin/python" "$CH_SERVER" --host 127.0.0.1 --port "$CH_PORT" \
		--data-dir "$CH_DIR/data" --pid-file "$CH_PID" >>"$LOG_DIR/clickhouse.log" 2>&1 </dev/null &
	echo $! >"$CH_PID"
	pid=$!
	if ! wait_healthy ch_healthy "$pid" "$CH_START_TIMEOUT"; then
		alive "$pid" && die "clickhouse: not answering /ping after ${CH_START_TIMEOUT}s; see $LOG_DIR/clickhouse.log"
		say "clickhouse: the server exited; last lines of $LOG_DIR/clickhouse.log:"
		tail -n 30 "$LOG_DIR/clickhouse.log" >&2
		rm -f "$CH_PID"
		return 1
	fi
	say "clickhouse: up in $(since "$t") (pid $(cat "$CH_PID")) on http://127.0.0.1:$CH_PORT"
}

ch_down() {
	local pid
	pid=$(cat "$CH_PID" 2>/dev/null || true)
	stop_pids clickhouse 30 ${pid:+"$pid"} $(pids_matching "$CH_SERVER")
	rm -f "$CH_PID"
}

ch_status() {
	local pid version
	pid=$(cat "$CH_PID" 2>/dev/null || true)
	if alive "$pid" && version=$(http_get "http://127.0.0.1:$CH_PORT/?query=SELECT%20version()" 3); then
		local rss
		rss=$(awk '/VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status")
		echo "clickhouse:    running  pid $pid  http://127.0.0.1:$CH_PORT  engine $version (chdb-server)  rss $rss"
	elif alive "$pid"; then
		echo "clickhouse:    starting or unhealthy  pid $pid  http://127.0.0.1:$CH_PORT"
	else
		echo "clickhouse:    stopped"
	fi
}

# ---------------------------------------------------------------- commands

print_env() {
	echo "export CROWSNEST_TEST_ELASTICSEARCH_URL=http://127.0.0.1:$ES_PORT"
	echo "export CROWSNEST_TEST_CLICKHOUSE_URL=http://127.0.0.1:$CH_PORT"
	# The distribution sinks/access starts a secured node of its own from.
	es_vars
	if [ -x "$ES_HOME/bin/elasticsearch" ]; then echo "export CROWSNEST_TEST_ES_HOME=$ES_HOME"; fi
}

services() {
	case "${1:-all}" in
	all) echo "elasticsearch clickhouse" ;;
	elasticsearch | es) echo elasticsearch ;;
	clickhouse | ch) echo clickhouse ;;
	*) die "unknown service $1 (elasticsearch or clickhouse)" ;;
	esac
}

main() {
	local cmd=${1:-}
	shift || true
	local s
	case "$cmd" in
	up)
		mkdir -p "$STATE_DIR"
		chmod a+rx "$STATE_DIR"
		for s in $(services "${1:-all}"); do
			case $s in elasticsearch) es_up ;; clickhouse) ch_up ;; esac
		done
		say "services are up; for tests:"
		print_env
		;;
	down)
		for s in $(services "${1:-all}"); do
			case $s in elasticsearch) es_down ;; clickhouse) ch_down ;; esac
		done
		;;
	status)
		for s in $(services "${1:-all}"); do
			case $s in elasticsearch) es_status ;; clickhouse) ch_status ;; esac
		done
		;;
	env) print_env ;;
	test)
		# The chdb-server suite starts its own server; the Elasticsearch smoke
		# tests use the running one and skip when none is up.
		ch_venv
		cd "$DEV_DIR"
		CROWSNEST_TEST_ELASTICSEARCH_URL=${CROWSNEST_TEST_ELASTICSEARCH_URL:-http://127.0.0.1:$ES_PORT} \
			PYTHONPYCACHEPREFIX="$STATE_DIR/pycache" "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs "$@" \
			chdb-server elasticsearch
		;;
	reset)
		for s in $(services "${1:-all}"); do
			case $s in
			elasticsearch) es_down && rm -rf "$ES_ROOT/data" ;;
			clickhouse) ch_down && rm -rf "$CH_DIR/data" ;;
			esac
		done
		say "data removed; downloads and installs are kept"
		;;
	*)
		sed -n '2,11s/^# \{0,1\}//p' "$0" >&2
		exit 2
		;;
	esac
}

main "$@"
