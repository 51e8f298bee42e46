#!/usr/bin/env bash
# ctest s3_tests: tests/s3-tests-subset.txt, a fixed fast subset of the ceph
# s3-tests suite, through tools/s3-tests against a local cluster of this
# build tree's binaries (own data folder, free ports). Every listed test must
# pass. Runs only with STRATA_LONG=1 (tools/dev test --long) and when the
# suite is fetched (S3TESTS_MIRROR); otherwise it says why and skips (77).
#
#   s3_tests_test.sh BUILD_DIR
set -u -o pipefail

TOP=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BIN=$(realpath "${1:?usage: s3_tests_test.sh BUILD_DIR}")

if [ "${STRATA_LONG:-0}" != 1 ]; then
	echo "SKIP: the s3-tests subset runs with STRATA_LONG=1 (tools/dev test --long)"
	exit 77
fi
if [ -z "${S3TESTS_SRC:-}" ] && [ ! -d "${S3TESTS_MIRROR:-/nonexistent}" ]; then
	echo "SKIP: ceph/s3-tests is not fetched: set S3TESTS_MIRROR to its git directory (fetch github:ceph/s3-tests)"
	exit 77
fi

TMP=$(mktemp -d /tmp/strata-s3tests-test.XXXXXX)
# A base port whose gateway (P), compute (P+10) and node (P+21..P+26) ports
# are all free.
BASE=$(python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 60000, 10)
    ok = True
    for q in [p, p + 10] + [p + 20 + i for i in range(1, 7)]:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
PY
)
[ -n "$BASE" ] || { echo "no free base port"; exit 1; }

STRATA_BIN_DIR=$BIN "$TOP/tools/s3-tests" --tolerant-setup \
	--subset "$TOP/tests/s3-tests-subset.txt" \
	--data "$TMP/cluster" --base-port "$BASE" --out "$TMP/out"
rc=$?
[ $rc = 77 ] && { rm -rf "$TMP"; exit 77; }
want=$(grep -c '^s3tests/' "$TOP/tests/s3-tests-subset.txt")
summary=$(head -n 1 "$TMP/out/strata/summary.txt" 2>/dev/null)
echo "s3_tests: $summary (of $want listed)"
if [ $rc != 0 ] || [ "$summary" != "$want passed, 0 failed, 0 skipped" ]; then
	echo "FAILED (files kept in $TMP):"
	awk -F'\t' '$3 != "passed" && NR > 1' "$TMP/out/strata/results.tsv" 2>/dev/null
	tail -n 30 "$TMP/cluster/log/gateway.log" 2>/dev/null
	exit 1
fi
rm -rf "$TMP"
