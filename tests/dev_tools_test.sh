#!/usr/bin/env bash
# dev_tools_test.sh daemons|up: tests tools/dev itself.
#
#   daemons  start_daemon/status/down with stand-in daemons (sleep, python
#            listeners): PID files, port wait, a daemon that dies at start,
#            one that never listens, one that ignores SIGTERM, a dead one, a
#            PID file whose PID was reused by another process (must survive
#            `down`).
#   up       `tools/dev up` into a temporary data folder with the strata-ring
#            of this build tree (STRATA_BIN_DIR, set by ctest): rings validate,
#            node folders, credentials kept across runs, then status and down.
#            Exits 77 (skipped) while strata-ring is not built.
#
# The exit trap stops what the test started with `tools/dev down` (by
# recorded PID); nothing is killed by name.
set -euo pipefail

TOP=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
DEV=$TOP/tools/dev
MODE=${1:?usage: dev_tools_test.sh daemons|up}

# ctest's TIMEOUT kills this script without running its exit trap, and the
# daemons it started (detached by start_daemon) would live on. So it watches
# itself: past DEV_TEST_DEADLINE seconds (set by ctest below its TIMEOUT) it
# gets SIGTERM, and the exit trap stops what it started.
if [[ -z ${DEV_TEST_WATCHED:-} ]]; then
	DEV_TEST_WATCHED=1 exec timeout -s TERM "${DEV_TEST_DEADLINE:-270}" "$0" "$@"
fi
trap 'echo "dev_tools_test: deadline reached, stopping" >&2; exit 124' TERM INT
TMP=$(mktemp -d /tmp/strata-dev-test.XXXXXX)
DATA=$TMP/data
export STRATA_STOP_WAIT=2

# Whatever a failed check left running was started through start_daemon:
# `down` stops exactly that (recorded PIDs, checked against their start time).
cleanup() {
	"$DEV" down --data "$DATA" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

check() {
	local what=$1
	shift
	"$@" || fail "$what"
	echo "ok: $what"
}

listening() {
	# shellcheck disable=SC2016 # $1 is the inner bash's argument
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# A base port whose cluster ports (P, P+10, P+21..P+26, and P+11 for the
# deaf daemon) are all free, below the ephemeral range so that an outgoing
# connection can't take one meanwhile.
free_base_port() {
	local try base p busy

	for ((try = 0; try < 50; try++)); do
		base=$((20000 + RANDOM % 12000))
		busy=""
		for p in $base $((base + 10)) $((base + 11)) $(seq $((base + 21)) $((base + 26))); do
			if listening "$p"; then
				busy=1
				break
			fi
		done
		[ -n "$busy" ] || { echo "$base"; return 0; }
	done
	fail "no free base port found"
}

BASE=$(free_base_port)

test_daemons() {
	local out sleeper gateway stubborn gw_port

	# shellcheck source-path=SCRIPTDIR/.. source=tools/dev
	. "$DEV"
	STRATA_START_WAIT=5 cluster_setup "$DATA" "$BASE"
	gw_port=${DAEMON_PORT[gateway]}

	start_daemon sleeper "$LOGS/sleeper.log" sleep 300
	sleeper=$(cat "$RUN/sleeper.pid")
	start_daemon gateway "$LOGS/gateway.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
time.sleep(0.5)			# start_daemon must wait for the port
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(300)' "$gw_port"
	gateway=$(cat "$RUN/gateway.pid")
	check "the gateway listens once start_daemon returns" listening "$gw_port"
	check "the gateway's port is recorded" grep -qx "$gw_port" "$RUN/gateway.port"
	start_daemon stubborn "$LOGS/stubborn.log" python3 -c '
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(300)'
	stubborn=$(cat "$RUN/stubborn.pid")

	out=$(start_daemon sleeper "$LOGS/sleeper.log" sleep 300)
	check "a second start leaves a running daemon alone" \
		grep -q "already running (pid $sleeper)" <<<"$out"

	# A daemon that dies at once: start fails, shows its log, no record.
	if out=$( (start_daemon crasher "$LOGS/crasher.log" sh -c 'echo boom >&2; exit 3') 2>&1); then
		fail "start_daemon succeeded for a crashing daemon"
	fi
	check "a crashing daemon's log tail is shown" grep -q boom <<<"$out"
	check "a crashing daemon leaves no pid file" test ! -e "$RUN/crasher.pid"

	# A daemon that never listens on its port: start fails within the wait.
	DAEMON_PORT[deaf]=$((BASE + 11))
	# shellcheck disable=SC2034 # START_WAIT is start_daemon's
	if out=$( (START_WAIT=2; start_daemon deaf "$LOGS/deaf.log" sleep 301) 2>&1); then
		fail "start_daemon succeeded for a daemon that does not listen"
	fi
	check "a deaf daemon is reported" grep -q "not listening" <<<"$out"
	check "a deaf daemon leaves no pid file" test ! -e "$RUN/deaf.pid"

	# A PID file whose PID now belongs to another process (PID reuse): this
	# very shell, so a `down` that signals it fails the test.
	echo $$ >"$RUN/impostor.pid"
	echo 1 >"$RUN/impostor.start"

	out=$("$DEV" status --data "$DATA" 2>&1) || true
	echo "$out"
	check "status shows a running daemon" grep -Eq "^  sleeper +running +pid $sleeper " <<<"$out"
	check "status shows the gateway's port" grep -Eq "^  gateway +running .* port $gw_port " <<<"$out"
	check "status does not take a reused PID for a daemon" grep -Eq "^  impostor +dead " <<<"$out"

	kill -KILL "$sleeper"
	if "$DEV" status --data "$DATA" >"$TMP/status.out" 2>&1; then
		fail "status exits 0 with a dead daemon"
	fi
	check "status shows a killed daemon as dead" grep -Eq "^  sleeper +dead " "$TMP/status.out"

	out=$("$DEV" down --data "$DATA" 2>&1) || fail "down failed: $out"
	echo "$out"
	check "down escalates to SIGKILL" grep -q "stubborn: still running 2s after SIGTERM" <<<"$out"
	check "down leaves no pid files" test -z "$(find "$RUN" -name '*.pid')"
	check "down stops the gateway" not_running "$gateway"
	check "down stops a daemon that ignores SIGTERM" not_running "$stubborn"
	check "down does not touch a process it did not start" proc_running $$
	check "down is idempotent" "$DEV" down --data "$DATA"
}

not_running() { ! proc_running "$1"; }

test_up() {
	local ring_tool=${STRATA_BIN_DIR:?STRATA_BIN_DIR must name the build tree}/ring/strata-ring
	local creds=$DATA/credentials before out addrs a r i

	if [ ! -x "$ring_tool" ]; then
		echo "SKIP: $ring_tool is not built (the ring issue adds it)"
		exit 77
	fi
	check "up succeeds" "$DEV" up --data "$DATA" --base-port "$BASE"
	for r in ec42 rep3; do
		check "$r builder exists" test -s "$DATA/rings/$r.builder"
		check "$r ring validates" "$ring_tool" validate "$DATA/rings/$r.ring"
		out=$("$ring_tool" lookup "$DATA/rings/$r.ring" /AUTH_test/bucket/object)
		addrs=$(grep -Eo '127\.0\.0\.1:[0-9]+' <<<"$out" | sort -u)
		check "$r lookup names nodes" test -n "$addrs"
		for a in $addrs; do
			check "$r lookup names only our nodes ($a)" \
				test "${a#*:}" -ge $((BASE + 21)) -a "${a#*:}" -le $((BASE + 26))
		done
	done
	for ((i = 1; i <= 6; i++)); do
		check "node$i has hot and cold folders" test -d "$DATA/node$i/hot" -a -d "$DATA/node$i/cold"
	done
	check "credentials are private" test "$(stat -c %a "$creds")" = 600
	check "credentials have profiles default and alt" \
		test "$(grep -c '^\[\(default\|alt\)\]$' "$creds")" = 2
	check "access keys look like STRATA + 14" \
		test "$(grep -Ec '^aws_access_key_id = STRATA[A-Z0-9]{14}$' "$creds")" = 2
	check "secrets have 40 characters" \
		test "$(grep -Ec '^aws_secret_access_key = [A-Za-z0-9/+]{40}$' "$creds")" = 2

	before=$(cat "$creds" "$DATA"/rings/*.builder | md5sum)
	check "a second up succeeds" "$DEV" up --data "$DATA"
	check "a second up keeps credentials and builders" \
		test "$(cat "$creds" "$DATA"/rings/*.builder | md5sum)" = "$before"
	if "$DEV" up --data "$DATA" --base-port $((BASE + 100)) 2>"$TMP/err"; then
		fail "up accepted another base port for existing rings"
	fi
	check "another base port is refused" grep -q "set up for base port $BASE" "$TMP/err"

	out=$("$DEV" status --data "$DATA") || fail "status failed: $out"
	echo "$out"
	check "status lists both rings" grep -q "rings/rep3.ring" <<<"$out"
	check "down succeeds" "$DEV" down --data "$DATA"
	check "no pid files after down" test -z "$(find "$DATA/run" -name '*.pid')"
}

case $MODE in
daemons)	test_daemons ;;
up)		test_up ;;
*)		fail "unknown mode $MODE" ;;
esac
echo "PASS: dev_tools_test $MODE"
