#!/usr/bin/python3
"""Durability (issue 7) on a live local cluster: 6 real storage nodes, one
strata-repaird beside each, the S3 gateway, and boto3 as the client.

usage: durability_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY STRATA_REPAIRD [TEST...]

Every test ends by reading every acknowledged object back through the gateway
and comparing it with the SHA-256 the test computed when it wrote it, and by
`strata-repaird --check` on every node (a fresh process: plans from the
nodes' LISTs, repairs nothing) finding nothing to repair.

  wipe2      (issue 7, test 3) two nodes lose their data directories (EC
             4+2: m = 2; and a bucket on ec12, EC 1+2 of policy index
             1); the repair daemons rebuild every fragment; then two
             *other* nodes are stopped and everything is read again, which
             needs the rebuilt fragments. Prints time to full redundancy and
             repair MB/s.
  deletes    (test 7) objects deleted (and some overwritten) while a node and
             its repair daemon are down; the node comes back stale
             (--check sees the work), its daemon runs: the objects stay
             deleted, the overwrites stay new.
  handoff    writes and deletes while a node and its daemon are down go to
             handoffs; with its own daemon still down, the handoff nodes'
             daemons push everything home (--check on it finds nothing).
  corrupt    (test 4, without the auditor) a byte flipped in a fragment file:
             the read quarantines it, repair rebuilds it, two other nodes
             stopped and the object still reads.
  audit      (test 4) bytes flipped in fragments nobody reads: the nodes'
             auditors (CRC scrub) quarantine them, repair rebuilds them.
  enospc     (test 5) one node's media full under a PUT load: handoffs or
             clean 503s, every acknowledged object reads back.
  listings   a holder of a bucket listing wiped: repair pulls the listings
             (bucket contents, uploads, parts) back; they answer with the
             other two holders stopped; the upload completes.
  kill9      (test 1, basic) kill -9 a node during a PUT/GET load: no GET
             fails, PUTs fail cleanly or are durable; restart; full
             redundancy again.

STRATA_LONG=1 makes the data sets larger. Exits 77 when boto3 is missing.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

try:
    import boto3  # noqa: F401  (cluster.py's clients)
    import botocore
except ImportError:
    print("SKIP: python3-boto3 is not installed (tools/dev install)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import NODES, Daemon, free_ports  # noqa: E402,F401  (for the tests built on this one)

RING, STORAGED, GATEWAY, REPAIRD = (os.path.abspath(a) for a in sys.argv[1:5])
ONLY = sys.argv[5:]
ADMIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "strata-admin")
TMP = cluster.make_tmp("durability-test.")
KiB, MiB = 1 << 10, 1 << 20
LONG = bool(os.environ.get("STRATA_LONG"))


T0 = [time.time()]


def step(what):
    """Phase timings (STRATA_TEST_VERBOSE=1)."""
    if os.environ.get("STRATA_TEST_VERBOSE"):
        print(f"    {time.time() - T0[0]:6.1f} s  {what}", flush=True)


class Cluster(cluster.Cluster):
    """Nodes (part power 6, the auditor on), repair daemons (interval 1 s,
    status files) and the gateway, in TMP/name."""

    def __init__(self, name, gw_args=()):
        super().__init__(RING, STORAGED, GATEWAY, os.path.join(TMP, name),
                         prefix=f"{name}-", part_power=6, alt=False, gw_args=gw_args,
                         # the auditor: a scrub pass every few seconds (the data is small)
                         node_args=["--audit-mbps", "20", "--audit-interval", "3"])
        self.repairds = []
        for i in range(NODES):
            self.repairds.append(Daemon(f"{name}-repaird{i + 1}", [
                REPAIRD, "--node-id", self.addr(i), "--rings", self.rings,
                "--status", self.status_path(i), "--interval", "1"]))
        self.s3 = self.client()
        self.s3.create_bucket(Bucket="probe")
        step("cluster up")

    def status_path(self, i):
        return os.path.join(self.dir, f"repaird{i + 1}.status")

    def client(self):
        return super().client(connect_timeout=10, read_timeout=60)

    def daemons(self):
        return [self.gw] + self.repairds + self.nodes

    def status(self, i):
        try:
            with open(self.status_path(i)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_clean(self, since, timeout=180, nodes=range(NODES)):
        """Until every repair daemon (of nodes) finished a clean pass that
        started after `since` (time.time()); returns when."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ok = True
            for i in nodes:
                d = self.repairds[i]
                assert d.running(), f"{d.name} died:\n{d.log_text()}"
            for i in nodes:
                st = self.status(i)
                if not st or not st["last_pass"]["clean"] or \
                   st["last_pass"]["started_ns"] < since * 1e9:
                    ok = False
                    break
            if ok:
                step("clean")
                return time.time()
            time.sleep(0.2)
        raise AssertionError("no clean repair pass on every node within %d s: %s" % (
            timeout, [self.status(i) for i in range(NODES)]))

    def check(self, i):
        """strata-repaird --check for node i: (exit code, counts)."""
        r = subprocess.run([REPAIRD, "--node-id", self.addr(i), "--rings", self.rings,
                            "--check"], capture_output=True, text=True, timeout=120)
        return r.returncode, json.loads(r.stdout.strip().splitlines()[-1]), r.stderr

    def check_all(self):
        procs = [subprocess.Popen([REPAIRD, "--node-id", self.addr(i), "--rings", self.rings,
                                   "--check"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for i in range(NODES)]
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=120)
            counts = json.loads(out.strip().splitlines()[-1])
            assert p.returncode == 0 and counts["planned"] == 0, (i, counts, err[-2000:])
            # handoff copies are purged once home has them
            assert counts["handoffs"] == 0, (i, counts, err[-2000:])

    def settle(self, timeout=60):
        """Until the gateway writes an EC object again (it skips a node it saw
        fail for a while after the node is back)."""
        for d in self.nodes + self.repairds:
            if not d.running():
                d.start()		# left stopped by a failed test
        deadline = time.time() + timeout
        while True:
            try:
                self.s3.put_object(Bucket="probe", Key="probe", Body=b"p" * (100 * KiB))
                return
            except botocore.exceptions.ClientError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)


def data_of(size, seed):
    """Deterministic, incompressible bytes."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest() * 32
        i += 1
    return bytes(out[:size])


def sizes(n):
    """Half small replicated objects, half EC ones (1 or 2 segments)."""
    small = [1, 700, 4 * KiB, 60 * KiB]
    big = [65 * KiB, 700 * KiB, 1536 * KiB, 5 * MiB]
    return [(small if i % 2 == 0 else big)[(i // 2) % 4] for i in range(n)]


def put_all(s3, bucket, keys, **put_args):
    """PUTs keys {key: size}; returns {key: sha256}. A PUT refused with 503
    SlowDown (a node missed a deadline on a loaded machine: the PUT failed
    cleanly) is tried again."""
    sums = {}
    for k, size in keys.items():
        body = data_of(size, k)
        for attempt in range(10):
            try:
                s3.put_object(Bucket=bucket, Key=k, Body=body, **put_args)
                break
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] != "SlowDown" or attempt == 9:
                    raise
                time.sleep(2)
        sums[k] = hashlib.sha256(body).hexdigest()
    return sums


def verify_all(s3, bucket, sums):
    for k, want in sums.items():
        got = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == want, (k, len(got))


def verify_without(c, nodes, bucket, sums):
    """verify_all with nodes stopped (long enough for the gateway to find
    them down), which start again after."""
    for i in nodes:
        c.nodes[i].stop()
    time.sleep(1.2)
    verify_all(c.client(), bucket, sums)
    for i in nodes:
        c.nodes[i].start()


def gone(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what}")


def node_stat(c, i):
    """The node's counters as its repair daemon last saw them (STAT)."""
    return (c.status(i) or {}).get("node_audit") or {}


def find_in_volumes(c, needle, nodes=range(NODES)):
    """[(node, volume path, offset)] of every copy of needle in volume files."""
    out = []
    for i in nodes:
        for dp, _, fs in os.walk(c.node_dir(i)):
            for f in fs:
                if f.startswith("vol-"):
                    with open(os.path.join(dp, f), "rb") as fh:
                        data = fh.read()
                    off = data.find(needle)
                    while off >= 0:
                        out.append((i, os.path.join(dp, f), off))
                        off = data.find(needle, off + 1)
    return out


def flip(path, off):
    with open(path, "r+b") as fh:
        fh.seek(off)
        b = fh.read(1)
        fh.seek(off)
        fh.write(bytes([b[0] ^ 0xFF]))


COLD_CLASS, PIN_COLD, COLD = 1, 3, 1	# storage.h: STO_TIER_COLD, _PIN_COLD, STO_MEDIUM_COLD
PIN_COLD_AFTER = 54321


def policies(c, nodes):
    """{(class, cold_after, medium): live fragments} on nodes, for the
    fragments with a policy other than the default (tests/node-frags)."""
    tool = os.environ.get("STRATA_NODE_FRAGS")
    assert tool, "STRATA_NODE_FRAGS (the node-frags binary) is not set"
    out = subprocess.run([tool, "--policies", "6", *[c.addr(i) for i in nodes]],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    pols = {}
    for line in out.splitlines():
        cls, ca, medium, n = (int(x) for x in line.split())
        if cls or ca:
            pols[(cls, ca, medium)] = pols.get((cls, ca, medium), 0) + n
    return pols


def wipe(c, i):
    c.nodes[i].stop()
    for sub in ("hot", "cold"):
        shutil.rmtree(os.path.join(c.node_dir(i), sub))
        os.makedirs(os.path.join(c.node_dir(i), sub))


def test_wipe2(c):
    s3 = c.s3
    s3.create_bucket(Bucket="bkt")
    keys = {f"obj{i}": sz for i, sz in enumerate(sizes(64 if LONG else 16))}
    sums = put_all(s3, "bkt", keys)
    # STANDARD_IA objects (node class COLD: they land on cold): what repair
    # rebuilds or copies for them must keep the class, so land on cold too.
    s3.create_bucket(Bucket="bkt-ia")
    ia = {f"ia{i}": sz for i, sz in enumerate([4 * KiB, 60 * KiB, 700 * KiB, 1536 * KiB] * 2)}
    ia_sums = put_all(s3, "bkt-ia", ia, StorageClass="STANDARD_IA")
    # A bucket pinned cold with its own cold_after (node class PIN_COLD):
    # both must survive repair too.
    cluster.with_headers(c.client(), "CreateBucket", {
        "x-strata-tier-pin": "cold",
        "x-strata-tier-cold-after": str(PIN_COLD_AFTER)}).create_bucket(Bucket="bkt-pin")
    pin = {f"pin{i}": sz for i, sz in enumerate([4 * KiB, 700 * KiB] * 3)}
    pin_sums = put_all(s3, "bkt-pin", pin)
    # A bucket on the second policy, ec12 (EC 1+2 of index 1: three copies,
    # fragments numbered 256-258): the same nodes' repair daemons rebuild
    # its fragments beside ec42's.
    cluster.with_headers(c.client(), "CreateBucket", {
        "x-strata-storage-policy": "ec12"}).create_bucket(Bucket="bkt-12")
    k12 = {f"c{i}": sz for i, sz in enumerate(sizes(16))}
    sums12 = put_all(s3, "bkt-12", k12)
    pols = policies(c, (1, 4))
    assert pols.get((PIN_COLD, PIN_COLD_AFTER, COLD)) and pols.get((COLD_CLASS, 0, COLD)), pols
    step("put")
    # (no wait for a first clean pass: the gateway acknowledged each PUT
    # only once every fragment was durable on its placement)
    before = 0		# their daemons restart: totals from 0
    for i in (1, 4):
        c.repairds[i].stop()	# held back until --check has seen the loss
        wipe(c, i)
    for i in (1, 4):
        c.nodes[i].start()
    rc, counts, _ = c.check(1)
    assert rc == 1 and counts["planned"] > 0, counts   # the loss is seen
    t0 = time.time()
    for i in (1, 4):
        c.repairds[i].start()
    t_full = c.wait_clean(t0)
    rebuilt = sum(c.status(i)["total_bytes_written"] for i in (1, 4)) - before
    heal = t_full - t0
    print(f"  wipe2: {len(keys)} objects ({sum(keys.values()) / MiB:.1f} MiB) on 6 nodes, 2 wiped; "
          f"full redundancy {heal:.1f} s after their daemons started (upper bound: "
          f"the next clean pass); "
          f"{rebuilt / MiB:.1f} MiB rebuilt, {rebuilt / MiB / heal:.1f} MiB/s; "
          f"load {os.getloadavg()[0]:.2f}")
    c.check_all()
    step("check")
    adm = subprocess.run([ADMIN, "repair", "status"] +
                         [c.status_path(i) for i in range(NODES)],
                         capture_output=True, text=True)
    assert adm.returncode == 0 and "full redundancy: yes" in adm.stdout, adm.stdout
    verify_all(s3, "bkt", sums)
    verify_all(s3, "bkt-ia", ia_sums)
    verify_all(s3, "bkt-pin", pin_sums)
    verify_all(s3, "bkt-12", sums12)
    step("verify")
    # Every non-default policy the wiped nodes held is back, on cold
    # (HEADs on the nodes: class, cold_after, medium).
    after = policies(c, (1, 4))
    assert after == pols, f"policies on the wiped nodes: before {pols}, after repair {after}"
    # Rebuilt (EC: fragment 0 holds an object's first bytes) and copied
    # (replicas) fragments of the STANDARD_IA objects are on cold only.
    found = {(k, i, p) for k in ia
             for i, p, _ in find_in_volumes(c, data_of(ia[k], k)[:64], (1, 4))}
    assert found, "no fragment of bkt-ia found on the wiped nodes"
    on_hot = sorted((k, p) for k, i, p in found
                    if os.path.relpath(p, c.node_dir(i)).split(os.sep)[0] != "cold")
    assert not on_hot, f"repaired STANDARD_IA fragments on hot: {on_hot}"
    print(f"  wipe2: {len(found)} (object, volume) pairs of repaired STANDARD_IA fragments, "
          f"all on cold; fragments by (class, cold_after, medium) on the wiped nodes, "
          f"as before the wipe: {after}")
    # Only the rebuilt nodes' fragments can make up the missing two now.
    verify_without(c, (0, 2), "bkt", sums)
    # ec12: an object placed on nodes 0 and 2 and a wiped one reads from
    # the rebuilt copy alone.
    verify_without(c, (0, 2), "bkt-12", sums12)


def test_deletes(c):
    s3 = c.s3
    s3.create_bucket(Bucket="bkt-deletes")
    keys = {f"obj{i}": sz for i, sz in enumerate(sizes(32 if LONG else 16))}
    sums = put_all(s3, "bkt-deletes", keys)
    x = 3
    # Every daemon waits: otherwise the handoffs' daemons may push the rep3
    # tombstones to the node before --check below looks (nothing stale left).
    for d in c.repairds:
        d.stop()
    c.nodes[x].stop()
    time.sleep(1.2)
    names = sorted(keys)
    deleted = names[0::2]
    for k in deleted:
        s3.delete_object(Bucket="bkt-deletes", Key=k)
        del sums[k]
    # Overwrites while the node is down: the new version must win.
    for k in names[1::4]:
        body = data_of(keys[k] // 2 + 1, k + "v2")
        if keys[k] > 64 * KiB:
            continue	# EC PUTs need all 6 nodes in a 6-node 4+2 cluster
        s3.put_object(Bucket="bkt-deletes", Key=k, Body=body)
        sums[k] = hashlib.sha256(body).hexdigest()
    c.nodes[x].start()
    rc, counts, _ = c.check(x)
    # Stale: its EC fragments and rep3 copies of deleted objects (every
    # daemon was stopped: nothing pushed the tombstones to it yet).
    assert rc == 1 and counts["planned"] >= 1, counts
    t0 = time.time()
    for d in c.repairds:
        d.start()
    c.wait_clean(t0)
    c.check_all()
    for k in deleted:
        assert gone(s3, "bkt-deletes", k), k
    verify_all(s3, "bkt-deletes", sums)
    # The node that was down now answers with the tombstones itself:
    # with two other nodes stopped, still nothing comes back.
    for i in (0, 1):
        c.nodes[i].stop()
    time.sleep(1.2)
    s3b = c.client()
    for k in deleted:
        assert gone(s3b, "bkt-deletes", k), k
    for i in (0, 1):
        c.nodes[i].start()


def test_handoff(c):
    """Writes and deletes while a node and its repair daemon are down land on
    handoff nodes; the node comes back, its daemon stays down: only the
    handoffs' daemons pushing home can make its placements whole."""
    s3 = c.s3
    s3.create_bucket(Bucket="bkt-handoff")
    pre = {f"pre{i}": 3000 + i for i in range(8)}
    sums = put_all(s3, "bkt-handoff", pre)
    x = 5
    c.repairds[x].stop()
    c.nodes[x].stop()
    time.sleep(1.2)
    keys = {f"new{i}": 1000 + 37 * i for i in range(12)}
    sums.update(put_all(s3, "bkt-handoff", keys))	# small: rep3, handoffs exist
    deleted = sorted(pre)[0::2]
    for k in deleted:
        s3.delete_object(Bucket="bkt-handoff", Key=k)
        del sums[k]
    pushed = sum((c.status(i) or {}).get("total_pushed", 0) for i in range(NODES) if i != x)
    purged = sum((c.status(i) or {}).get("total_purged", 0) for i in range(NODES) if i != x)
    c.nodes[x].start()
    t0 = time.time()
    c.wait_clean(t0, nodes=[i for i in range(NODES) if i != x])
    pushed = sum(c.status(i)["total_pushed"] for i in range(NODES) if i != x) - pushed
    rc, counts, err = c.check(x)
    # (its listings are behind until its own daemon pulls them: listings
    # have no handoffs)
    assert counts["planned"] == 0 and counts["unreachable"] == 0, (counts, err[-3000:])
    assert pushed > 0, pushed
    purged = sum(c.status(i)["total_purged"] for i in range(NODES) if i != x) - purged
    assert purged > 0, purged
    print(f"  handoff: {pushed} pushes from handoff nodes made the returning node whole; "
          f"then {purged} handoff copies purged")
    t1 = time.time()
    c.repairds[x].start()
    c.wait_clean(t1)
    # No node holds anything for another's placement any more (--check
    # lists every suffix: "handoffs" counts such entries), and the node's
    # PURGE counters saw it.
    c.check_all()
    wait_for(lambda: sum(node_stat(c, i).get("purged", 0) for i in range(NODES)
                         if i != x) > 0, 15, "nodes' PURGE counters")
    for k in deleted:
        assert gone(s3, "bkt-handoff", k), k
    verify_all(s3, "bkt-handoff", sums)
    # and with the handoffs' copies gone, the reads come from home
    verify_all(c.client(), "bkt-handoff", sums)


def test_corrupt(c):
    """A flipped byte in a fragment on disk: the node's CRC check on read
    quarantines it (the GET still succeeds from parity), the node's repair
    daemon rebuilds it, and with two other nodes stopped the object still
    reads: the rebuilt fragment is good."""
    s3 = c.s3
    s3.create_bucket(Bucket="bkt-corrupt")
    size = 1536 * KiB			# one segment: fragment 0 = body[0:384 KiB]
    sums = put_all(s3, "bkt-corrupt", {"victim": size})
    body = data_of(size, "victim")
    where = None
    for i in range(NODES):
        for dp, _, fs in os.walk(c.node_dir(i)):
            for f in fs:
                if f.startswith("vol-"):
                    with open(os.path.join(dp, f), "rb") as fh:
                        off = fh.read().find(body[:4096])
                    if off >= 0:
                        where = (i, os.path.join(dp, f), off)
    assert where, "fragment 0 not found on any node"
    node, path, off = where
    rebuilt = c.status(node)["total_rebuilt"]
    with open(path, "r+b") as fh:
        fh.seek(off + 100 * KiB)
        b = fh.read(1)
        fh.seek(off + 100 * KiB)
        fh.write(bytes([b[0] ^ 0xFF]))
    t0 = time.time()
    verify_all(s3, "bkt-corrupt", sums)	# node says ECRC, parity decodes
    c.wait_clean(t0)
    c.check_all()
    others = [i for i in range(NODES) if i != node][:2]
    verify_without(c, others, "bkt-corrupt", sums)
    rebuilt = c.status(node)["total_rebuilt"] - rebuilt
    assert rebuilt >= 1, rebuilt
    print(f"  corrupt: node{node + 1} quarantined fragment 0 on read; its repair "
          f"daemon rebuilt {rebuilt} fragment(s)")


def test_audit(c):
    """(issue 7, test 4) Bytes flipped in fragment files of objects nobody
    reads: the nodes' auditors find them (CRC scrub), quarantine them, the
    repair daemons rebuild (EC) or copy (rep3) them, and every object reads
    back - the EC ones also with two other nodes stopped."""
    s3 = c.s3
    s3.create_bucket(Bucket="bkt-audit")
    keys = {f"aud{i}": sz for i, sz in enumerate([60 * KiB, 1536 * KiB, 700, 1536 * KiB,
                                                   4 * KiB, 700 * KiB])}
    sums = put_all(s3, "bkt-audit", keys)
    victims = []
    before = sum(node_stat(c, i).get("corrupt", 0) for i in range(NODES))
    t0 = time.time()
    for k in ("aud0", "aud1", "aud3", "aud5"):
        body = data_of(keys[k], k)
        where = find_in_volumes(c, body[:4096])
        assert where, k
        node = where[0][0]
        # every copy on that node (a PUT retried after a 503 leaves an older,
        # dead record of the same bytes)
        for _, path, off in (w for w in where if w[0] == node):
            flip(path, off + min(100, len(body) // 2) if keys[k] < 8 * KiB else off + 5000)
        victims.append((k, node))
    # Nobody reads them: only the auditors can find them. The corrupt count
    # alone can be reached early (a flipped dead duplicate counts too), so
    # also wait for a whole pass begun after the flips on every victim's node
    # (passes + 2: the pass running during the flips may have missed them).
    passes = {n: node_stat(c, n).get("passes", 0) for _, n in victims}
    wait_for(lambda: sum(node_stat(c, i).get("corrupt", 0) for i in range(NODES)) -
             before >= len(victims), 60, "the auditors finding the flipped bytes")
    found = time.time() - t0
    wait_for(lambda: all(node_stat(c, n).get("passes", 0) >= p + 2
                         for n, p in passes.items()), 60,
             "a whole audit pass after the flips on every victim's node")
    c.wait_clean(time.time())
    c.check_all()
    adm = subprocess.run([ADMIN, "repair", "status"] +
                         [c.status_path(i) for i in range(NODES)],
                         capture_output=True, text=True)
    assert adm.returncode == 0 and "audit:" in adm.stdout, adm.stdout
    verify_all(s3, "bkt-audit", sums)
    ec = {k: v for k, v in sums.items() if keys[k] > 64 * KiB}
    others = [i for i in range(NODES) if i not in {n for _, n in victims}][:2]
    if len(others) < 2:
        others = [i for i in range(NODES) if i != victims[1][1]][:2]
    verify_without(c, others, "bkt-audit", ec)
    print(f"  audit: {len(victims)} fragments with flipped bytes found by the auditors "
          f"{found:.1f} s after the flips, rebuilt; load {os.getloadavg()[0]:.2f}")


def test_enospc(c):
    """(issue 7, test 5) One node's media full (restarted with its whole file
    system reserved) under a PUT load: its writes go to handoffs (rep3) or the
    PUT fails cleanly (503, EC on 6 nodes has no spare); nothing torn: every
    acknowledged object reads back, and after the node has room again repair
    makes everything whole (--check: nothing to do)."""
    s3 = c.s3
    s3.create_bucket(Bucket="bkt-enospc")
    x = 4
    c.nodes[x].stop()
    args = list(c.nodes[x].args)
    c.nodes[x].args = args + ["--reserve-pct", "100"]
    c.nodes[x].start()
    acked, fails, codes = {}, 0, {}
    try:
        cl = c.client()
        for n in range(24 if not LONG else 96):
            k = f"full{n}"
            size = sizes(8)[n % 8]
            body = data_of(size, k)
            try:
                cl.put_object(Bucket="bkt-enospc", Key=k, Body=body)
                acked[k] = hashlib.sha256(body).hexdigest()
            except botocore.exceptions.ClientError as e:
                fails += 1
                st = e.response["ResponseMetadata"]["HTTPStatusCode"]
                codes[st] = codes.get(st, 0) + 1
                assert st in (500, 503, 507), e.response
        # readable while the node is still full
        verify_all(cl, "bkt-enospc", acked)
        nospace = node_stat(c, x).get("nospace")
    finally:
        c.nodes[x].stop()
        c.nodes[x].args = args
        c.nodes[x].start()
    assert acked, "no PUT succeeded"
    t0 = time.time()
    c.settle()
    c.wait_clean(t0)
    c.check_all()
    verify_all(s3, "bkt-enospc", acked)
    print(f"  enospc: {len(acked)} PUTs acknowledged, {fails} refused cleanly {codes} "
          f"while node{x + 1} was full (its nospace count: {nospace}); all read back")


def test_listings(c):
    """(issue 7: listings, multipart uploads and bucket metadata survive the
    faults object data does) A node holding the bucket's listing loses its
    data; repair rebuilds objects, bucket and upload records and pulls the
    listings back; with the listing's two other holders stopped, ListObjects
    and ListMultipartUploads still answer in full from the rebuilt node; the
    upload then completes and reads back."""
    s3 = c.s3
    b = "bkt-listings"
    s3.create_bucket(Bucket=b)
    keys = {f"lst-{i:03d}-unique": 100 + i for i in range(30)}
    sums = put_all(s3, b, keys)
    mkey = "lst-mpu-object-unique"
    up = s3.create_multipart_upload(Bucket=b, Key=mkey)["UploadId"]
    parts = [data_of(5 * MiB, "p1"), data_of(300 * KiB, "p2")]
    etags = [s3.upload_part(Bucket=b, Key=mkey, UploadId=up, PartNumber=n + 1,
                            Body=p)["ETag"] for n, p in enumerate(parts)]
    # The bucket listing's holders: its keys are in their index files.
    holders = []
    for i in range(NODES):
        with open(os.path.join(c.node_dir(i), "hot", "index", "data.mdb"), "rb") as f:
            if b"lst-007-unique" in f.read():
                holders.append(i)
    assert len(holders) == 3, holders
    w, others = holders[0], holders[1:]
    c.repairds[w].stop()
    wipe(c, w)
    c.nodes[w].start()
    rc, counts, _ = c.check(w)
    assert rc == 1 and counts["planned"] > 0 and counts["listings"] > 0, counts
    t0 = time.time()
    c.repairds[w].start()
    c.wait_clean(t0)
    pulled = c.status(w)["total_listing_entries"]
    assert pulled >= len(keys), pulled
    c.check_all()
    c.settle()	# the gateway's connection to the restarted node is fresh again
    for i in others:
        c.nodes[i].stop()
    time.sleep(1.2)
    try:
        cl = c.client()
        got = []
        for page in cl.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 7}):
            got += [o["Key"] for o in page.get("Contents", [])]
        assert got == sorted(keys), (len(got), got[:5])
        ups = cl.list_multipart_uploads(Bucket=b).get("Uploads", [])
        assert [(u["Key"], u["UploadId"]) for u in ups] == [(mkey, up)], ups
    finally:
        for i in others:
            c.nodes[i].start()
    c.settle()
    s3.complete_multipart_upload(Bucket=b, Key=mkey, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    sums[mkey] = hashlib.sha256(b"".join(parts)).hexdigest()
    verify_all(s3, b, sums)
    print(f"  listings: node{w + 1} (a holder of the bucket listing) wiped; its daemon "
          f"pulled {pulled} listing entries back; listings answered with the two other "
          f"holders stopped; the upload completed")


def test_kill9(c):
    stop = threading.Event()
    acked, lock = {}, threading.Lock()
    errors = {"get": [], "put": 0, "puts": 0, "gets": 0}
    try:
        s3 = c.s3
        s3.create_bucket(Bucket="bkt-kill9")
        base = put_all(s3, "bkt-kill9", {f"base{i}": sz for i, sz in enumerate(sizes(8))})
        acked.update(base)

        def load(t):
            cl = c.client()
            n = 0
            while not stop.is_set():
                k = f"load{t}-{n}"
                size = sizes(8)[n % 8]
                body = data_of(size, k)
                try:
                    cl.put_object(Bucket="bkt-kill9", Key=k, Body=body)
                    with lock:
                        acked[k] = hashlib.sha256(body).hexdigest()
                except Exception:
                    errors["put"] += 1	# a clean failure: never acknowledged
                errors["puts"] += 1
                with lock:
                    pick = list(acked.items())[(n * 7) % len(acked)]
                try:
                    got = cl.get_object(Bucket="bkt-kill9", Key=pick[0])["Body"].read()
                    if hashlib.sha256(got).hexdigest() != pick[1]:
                        errors["get"].append((pick[0], "bad bytes"))
                except Exception as e:
                    errors["get"].append((pick[0], repr(e)))
                errors["gets"] += 1
                n += 1

        threads = [threading.Thread(target=load, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)
        victim = 2
        c.nodes[victim].kill9()
        time.sleep(4 if not LONG else 20)
        c.nodes[victim].start()
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()
        print(f"  kill9: {errors['puts']} PUTs ({errors['put']} failed cleanly), "
              f"{errors['gets']} GETs, {len(errors['get'])} GET errors; "
              f"load {os.getloadavg()[0]:.2f}")
        assert not errors["get"], errors["get"][:5]
        t0 = time.time()
        c.wait_clean(t0)
        c.check_all()
        verify_all(s3, "bkt-kill9", acked)
    finally:
        stop.set()
        rc = c.stop()
    assert all(v == 0 for v in rc.values()), rc


TESTS = [("wipe2", test_wipe2), ("deletes", test_deletes), ("handoff", test_handoff),
         ("corrupt", test_corrupt), ("audit", test_audit), ("enospc", test_enospc),
         ("listings", test_listings), ("kill9", test_kill9)]


def main():
    # One cluster for all: each test uses its own bucket and waits for
    # repair passes that started after its own fault.
    c = Cluster("cluster")

    def setup():
        T0[0] = time.time()
        c.settle()
    return cluster.run(c, [(name, lambda fn=fn: fn(c)) for name, fn in TESTS], ONLY, setup)


if __name__ == "__main__":
    sys.exit(main())
