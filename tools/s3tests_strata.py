#!/usr/bin/env python3
"""tools/s3-tests' helper.

* pytest plugin (``-p s3tests_strata``, with STRATA_S3TESTS_TOLERANT=1): the
  suite's autouse fixture empties and deletes every bucket of the run's prefix
  before and after each test, through ListBuckets, ListObjectVersions and
  DeleteObjects. A server without those answers 501 there and *every* test
  errors in setup, whatever it tests. In tolerant mode a cleanup that fails
  with NotImplemented is skipped (buckets are left on the server), so each
  test passes or fails on its own requests. The results are then labelled
  "tolerant": they say what fails, they are not the official count.

* ``s3tests_strata.py compare STRATA_OUT PEER_OUT``: the two runs' per-category
  tables side by side (from the harness's results.tsv), then the tests one
  passes and the other does not.
"""
import collections
import os
import sys

# ------------------------------------------------------------ pytest plugin
_skipped = [0]

try:
    import pytest

    def _tolerant(fn):
        def wrapper(*args, **kwargs):
            from botocore.exceptions import ClientError
            try:
                return fn(*args, **kwargs)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "NotImplemented":
                    raise
                _skipped[0] += 1
        return wrapper

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(item):
        if os.environ.get("STRATA_S3TESTS_TOLERANT") != "1":
            return
        mod = sys.modules.get("s3tests.functional")
        if mod is None or getattr(mod, "_strata_tolerant", False):
            return
        mod.nuke_prefixed_buckets = _tolerant(mod.nuke_prefixed_buckets)
        mod._strata_tolerant = True

    def pytest_terminal_summary(terminalreporter):
        if _skipped[0]:
            terminalreporter.write_line(
                "strata: TOLERANT setup: %d bucket cleanups skipped (server answered "
                "NotImplemented); not an official result" % _skipped[0])
except ImportError:
    pass


# ------------------------------------------------------------------ compare
def load(out):
    res = collections.OrderedDict()
    with open(os.path.join(out, "results.tsv")) as f:
        next(f)
        for line in f:
            test, cat, outcome = line.rstrip("\n").split("\t")[:3]
            res[test] = (cat, "failed" if outcome == "error" else outcome)
    return res


def compare(a_dir, b_dir, a_name="strata", b_name="swift"):
    a, b = load(a_dir), load(b_dir)
    cats = collections.OrderedDict()
    for res, side in ((a, 0), (b, 1)):
        for cat, outcome in res.values():
            c = cats.setdefault(cat, [collections.Counter(), collections.Counter()])
            c[side][outcome] += 1
    hdr = ("category", "tests", a_name + " pass", "fail", "skip",
           b_name + " pass", "fail", "skip")
    rows = []
    tot = [0] * 7
    for cat, (ca, cb) in sorted(cats.items(), key=lambda kv: -sum(kv[1][0].values())):
        r = [cat, max(sum(ca.values()), sum(cb.values())),
             ca["passed"], ca["failed"], ca["skipped"],
             cb["passed"], cb["failed"], cb["skipped"]]
        rows.append(r)
        tot = [x + y for x, y in zip(tot, r[1:])]
    rows.append(["TOTAL"] + tot)
    w = [max(len(str(r[i])) for r in rows + [list(hdr)]) for i in range(len(hdr))]
    print("  ".join(str(h).ljust(x) for h, x in zip(hdr, w)))
    for r in rows:
        print("  ".join(str(c).ljust(x) for c, x in zip(r, w)))
    only_a = [t for t, (_, o) in a.items() if o == "passed" and b.get(t, ("", ""))[1] != "passed"]
    only_b = [t for t, (_, o) in b.items() if o == "passed" and a.get(t, ("", ""))[1] != "passed"]
    print("\npassed by %s only: %d; by %s only: %d" % (a_name, len(only_a), b_name, len(only_b)))
    for t in only_b:
        print("  %s only: %s" % (b_name, t.split("::")[-1]))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "compare":
        return compare(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
