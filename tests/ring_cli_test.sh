#!/usr/bin/env bash
# ring_cli_test.sh STRATA_RING: the strata-ring tool end to end, as an
# operator uses it: build, change and inspect rings; damaged and wrong files
# give clear errors and exit codes, never a crash.
set -euo pipefail
ring=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
py=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_error RC PATTERN OUTPUT WANT_RC: the command exited WANT_RC and said PATTERN.
expect_error() {
	if [ "$1" != "$4" ] || ! grep -q "$2" <<<"$3"; then
		fail "expected exit $4 and '$2', got exit $1: $3"
	fi
}
json() { "$py" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# A 4+2 EC ring over 8 nodes in 8 zones.
"$ring" create ec.builder --part-power 8 --ec 4+2 --min-part-hours 1 --seed 3 >/dev/null
for z in 1 2 3 4 5 6 7 8; do
	"$ring" add ec.builder --region 1 --zone "$z" --node "127.0.0.1:85$z$z" \
		--name d0 --weight 100 >/dev/null
done
out=$("$ring" rebalance ec.builder --now-hours 480000)
grep -q "wrote ec.ring (version 1)" <<<"$out" || fail "rebalance output: $out"
"$ring" validate ec.ring | grep -q "ec.ring: valid" || fail "validate"

# show: balance within 1%, every device holds its share (256*6/8 = 192).
"$ring" show ec.builder --json >show.json
[ "$(json 'd["stats"]["dispersion"]' <show.json)" = 0 ] || fail "dispersion"
[ "$(json 'all(x["parts"] == 192 for x in d["devices"])' <show.json)" = True ] ||
	fail "uneven parts: $(cat show.json)"

# lookup: 6 fragments in 6 distinct zones, then the 2 other devices as handoffs.
"$ring" lookup ec.ring /AUTH_test/photos/cat.jpg --handoffs 4 --json >lookup.json
[ "$(json 'len(set(x["zone"] for x in d["primaries"]))' <lookup.json)" = 6 ] || fail "zones"
[ "$(json 'len(d["handoffs"])' <lookup.json)" = 2 ] || fail "handoffs"
[ "$(json 'len(set(x["id"] for x in d["primaries"] + d["handoffs"]))' <lookup.json)" = 8 ] ||
	fail "handoffs overlap primaries"
# Same name, same answer (plain output is stable too).
a=$("$ring" lookup ec.ring /AUTH_test/photos/cat.jpg)
b=$("$ring" lookup ec.ring /AUTH_test/photos/cat.jpg)
[ "$a" = "$b" ] || fail "lookup not deterministic"

# remove: moves exactly what the device held (removed devices ignore
# min_part_hours), the ring no longer names it.
held=$("$ring" show ec.builder --json | json '[x["parts"] for x in d["devices"] if x["id"] == 2][0]')
"$ring" remove ec.builder 2 >/dev/null
moved=$("$ring" rebalance ec.builder --now-hours 480000 --json | json 'd["moved"]')
[ "$moved" = "$held" ] || fail "remove moved $moved, device held $held"
"$ring" show ec.ring --json | json '[x["id"] for x in d["devices"]]' | grep -vq "\b2\b" ||
	fail "removed device still in ring"

# set-weight 0 drains a device.
"$ring" set-weight ec.builder 5 0 >/dev/null
"$ring" rebalance ec.builder --now-hours 480002 >/dev/null
[ "$("$ring" show ec.builder --json | json '[x["parts"] for x in d["devices"] if x["id"] == 5][0]')" = 0 ] ||
	fail "drained device still holds partitions"

# set-overload is kept in the builder.
"$ring" set-overload ec.builder 0.1 | grep -q "overload 0.1 (10.0%)" || fail "set-overload"
[ "$("$ring" show ec.builder --json | json 'd["overload"]')" = 0.1 ] || fail "overload not kept"

# Errors: exit 1 with a plain reason; bad usage exits 2.
cp ec.ring damaged.ring
printf '\xff' | dd of=damaged.ring bs=1 seek=100 conv=notrunc status=none
set +e
msg=$("$ring" validate damaged.ring 2>&1); rc=$?
expect_error "$rc" "damaged" "$msg" 1
head -c 50 ec.ring >short.ring
msg=$("$ring" validate short.ring 2>&1); rc=$?
expect_error "$rc" "damaged" "$msg" 1
msg=$("$ring" validate ec.builder 2>&1); rc=$?
expect_error "$rc" "wrong kind" "$msg" 1
msg=$("$ring" validate /etc/passwd 2>&1); rc=$?
expect_error "$rc" "not a Strata ring" "$msg" 1
"$ring" add ec.builder --region 1 --zone 1 --node 127.0.0.1:8511 --name d0 --weight 1 >/dev/null 2>&1
[ $? = 1 ] || fail "duplicate device accepted"
"$ring" add ec.builder --zone 1 --node x --name d0 --weight -3 >/dev/null 2>&1
[ $? = 2 ] || fail "negative weight accepted"
"$ring" create x.builder --part-power 30 --replicas 3 >/dev/null 2>&1
[ $? = 2 ] || fail "part power 30 accepted"
"$ring" lookup ec.ring no-leading-slash >/dev/null 2>&1
[ $? = 2 ] || fail "bad lookup path accepted"
"$ring" frobnicate >/dev/null 2>&1
[ $? = 2 ] || fail "unknown command"
set -e
echo "ring_cli_test: ok"
