#!/usr/bin/python3
"""Rebalance (issue 7, test 6) on a live local cluster: 6 storage nodes, a
strata-repaird beside each, the S3 gateway, boto3 as the client.

usage: rebalance_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY STRATA_REPAIRD

  1. Objects are written, then a mixed PUT/GET load runs while a 7th node
     (new data folders, new port) joins: strata-ring adds it to both rings
     and rebalances into new ring files, `strata-admin ring push` installs
     them (a stale ring is refused), every daemon switches without a
     restart and the repair daemons move the placements that changed. No GET
     may fail; the movement (placements pushed, copied or rebuilt by every
     daemon) must be what the rings' change asks for the objects stored:
     at least every placement that changed, at most that plus a few (the
     bucket records, writes that went to a handoff under load).
  2. Under the same load node 1 is drained (weight 0, push, movement done),
     then removed (push again), `strata-admin ring settle` drops the
     previous placement; node 1 is stopped and every object still reads.
  Listings move too: after each phase every listing (the nodes' listing
     stores, read by tests/node-frags) is held by exactly its partition's
     rep3 primaries, identically (nothing left on a previous holder), every
     bucket lists every acknowledged key (ListObjectsV2, pages of 7), and a
     multipart upload begun before the first phase completes after the last.
     A listing written only to node 1 as it is drained reaches the new
     placement before node 1 drops it.
  3. A ring file put back by hand (an older version) is refused by the
     gateway and the repair daemons, which keep serving.

Every acknowledged object is read back at the end of each phase and compared
with the SHA-256 the test computed when it wrote it; `strata-repaird --check`
must find nothing to do on every remaining node. STRATA_LONG=1 writes more
objects and runs the load longer. Exits 77 when boto3 is missing.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import durability_test as dt  # noqa: E402  (the cluster harness; exits 77 without boto3)

RING, STORAGED, GATEWAY, REPAIRD = dt.RING, dt.STORAGED, dt.GATEWAY, dt.REPAIRD
ADMIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "strata-admin")
KEY = "STRATATESTKEY0001"		# the bucket owner: names are /owner/bucket/key
BUCKET = "bkt-rebal"
KiB, MiB = 1 << 10, 1 << 20
SMALL_MAX = 64 * KiB			# larger objects are EC, in 4 MiB segments
SEGMENT = 4 * MiB
LONG = dt.LONG
NODE_FRAGS = os.environ.get("STRATA_NODE_FRAGS")
# Every ring of the cluster changes with its nodes (the second policy, ec12,
# too: a drained node must leave every ring before it goes).
RINGS = ("ec42", "rep3", "ec12")
BUCKETS = [f"bkt-rl{i}" for i in range(6)]	# small buckets: their listings move too


# `strata-admin ring` reads DIR/rings and DIR/run/repaird*.status, as tools/dev lays them out.
def _status_path(self, i):
    run = os.path.join(self.dir, "run")
    os.makedirs(run, exist_ok=True)
    return os.path.join(run, f"repaird{i + 1}.status")


dt.Cluster.status_path = _status_path
os.environ["STRATA_RING_BIN"] = RING


def admin(c, *args):
    return subprocess.run([sys.executable, ADMIN, *args, "--data", c.dir],
                          capture_output=True, text=True, timeout=120)


def ring_json(*args):
    out = subprocess.run([RING, *args, "--json"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def rebalance_to(c, name, out, *change):
    """Applies a builder change (strata-ring args with BUILDER as {b}) and
    rebalances into the ring file out; returns the builder's report."""
    b = os.path.join(c.rings, name + ".builder")
    if change:
        subprocess.run([RING, *[a.format(b=b) for a in change]], check=True,
                       stdout=subprocess.DEVNULL)
    return ring_json("rebalance", b, "--ring", out)


def push(c, paths):
    r = admin(c, "ring", "push", *paths)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.strip()


def wait_moved(c, timeout):
    """Until `strata-admin ring status` says the movement is done (with
    every running repair daemon's status in)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        running = 0
        for d in c.repairds:
            if d is not None:
                assert d.running(), f"{d.name} died:\n{d.log_text()}"
                running += 1
        r = admin(c, "ring", "status", "--json")
        if r.returncode == 0 and len(json.loads(r.stdout)["daemons"]) == running:
            return time.time()
        time.sleep(0.5)
    raise AssertionError("movement not done in %d s:\n%s" % (timeout, admin(
        c, "ring", "status").stdout))


def moved_counts(c):
    """Placements written by repair so far, every daemon: pushes (the old
    holder), copies and rebuilds (a new holder that did not wait)."""
    tot = {"pushed": 0, "copied": 0, "rebuilt": 0, "bytes": 0}
    for i in range(len(c.repairds)):
        st = c.status(i) if c.repairds[i] is not None else None
        if st:
            tot["pushed"] += st.get("total_pushed", 0)
            tot["copied"] += st.get("total_copied", 0)
            tot["rebuilt"] += st.get("total_rebuilt", 0)
            tot["bytes"] += st.get("total_pushed_bytes", 0)
    return tot


def ideal_moves(sizes, parts, old, new):
    """Placements of these objects that the ring change moved: each object's
    head (rep3) and, for EC objects, each segment's fragments."""
    moved = 0
    for key, size in sizes.items():
        rp, ep = parts[key]
        moved += sum(a != b for a, b in zip(old["rep3"][rp], new["rep3"][rp]))
        if size > SMALL_MAX:
            segs = math.ceil(size / SEGMENT)
            moved += segs * sum(a != b for a, b in zip(old["ec42"][ep], new["ec42"][ep]))
    return moved


def partitions(c, keys):
    """key -> (rep3 partition, ec42 partition), as the rings place /owner/bucket/key."""
    out = {}
    for k in keys:
        path = f"/{KEY}/{BUCKET}/{k}"
        out[k] = tuple(ring_json("lookup", os.path.join(c.rings, n + ".ring"), path)
                       ["partition"] for n in ("rep3", "ec42"))
    return out


def assignments(paths):
    return {n: ring_json("show", p, "--assignment")["assignment"] for n, p in paths.items()}


class Load:
    """Two clients: each PUTs a new object then GETs an acknowledged one."""

    def __init__(self, c, acked, sizes, tag):
        self.c, self.acked, self.sizes, self.tag = c, acked, sizes, tag
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.get_errors, self.puts, self.put_failed, self.gets = [], 0, 0, 0
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(2)]
        for t in self.threads:
            t.start()

    def run(self, t):
        cl = self.c.client()
        n = 0
        while not self.stop_ev.is_set():
            k = f"{self.tag}{t}-{n}"
            size = dt.sizes(8)[n % 8]
            body = dt.data_of(size, k)
            try:
                cl.put_object(Bucket=BUCKET, Key=k, Body=body)
                with self.lock:
                    self.acked[k] = hashlib.sha256(body).hexdigest()
                    self.sizes[k] = size
            except Exception:
                self.put_failed += 1		# clean: never acknowledged
            self.puts += 1
            with self.lock:
                keys = list(self.acked)
            pick = keys[(n * 7 + t) % len(keys)]
            try:
                got = cl.get_object(Bucket=BUCKET, Key=pick)["Body"].read()
                if hashlib.sha256(got).hexdigest() != self.acked[pick]:
                    self.get_errors.append((pick, "bad bytes"))
            except Exception as e:
                self.get_errors.append((pick, repr(e)))
            self.gets += 1
            n += 1

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join()
        return (f"{self.puts} PUTs ({self.put_failed} failed cleanly), {self.gets} GETs, "
                f"{len(self.get_errors)} GET errors")


def add_node(c):
    """A 7th storage node: new folders, a new port; its repair daemon starts
    once the rings name it."""
    port = dt.free_ports(1)[0]
    i = len(c.ports)
    c.ports.append(port)
    d = c.node_dir(i)
    os.makedirs(d + "/hot")
    os.makedirs(d + "/cold")
    c.nodes.append(dt.Daemon(f"rebal-node{i + 1}", [
        STORAGED, "--hot", d + "/hot", "--cold", d + "/cold", "--listen", "127.0.0.1",
        "--port", str(port), "--node-id", c.addr(i), "--reserve-pct", "0",
        "--index-map-size", "1G"], port=port))
    c.repairds.append(None)
    return i


def start_repaird(c, i):
    c.repairds[i] = dt.Daemon(f"rebal-repaird{i + 1}", [
        REPAIRD, "--node-id", c.addr(i), "--rings", c.rings, "--status", c.status_path(i),
        "--interval", "1"])


def check_nodes(c, nodes):
    procs = {i: subprocess.Popen([REPAIRD, "--node-id", c.addr(i), "--rings", c.rings,
                                  "--check"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for i in nodes}
    for i, p in procs.items():
        out, err = p.communicate(timeout=120)
        counts = json.loads(out.strip().splitlines()[-1])
        assert p.returncode == 0 and counts["planned"] == 0, (i, counts, err[-2000:])


def wait_log(d, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in d.log_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{d.name}: no '{text}' in its log:\n{d.log_text()}")


def node_listings(c, nodes):
    """{(part, listing id): {node: (entries, tombstones, hash)}}: the nodes'
    listing stores, through their LISTING_IDS."""
    r = subprocess.run([NODE_FRAGS, "--listings", "6", *[c.addr(i) for i in nodes]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    node = {c.addr(i): i for i in nodes}
    out = {}
    for line in r.stdout.splitlines():
        addr, part, lid, ent, tomb, h = line.split()
        out.setdefault((int(part), lid), {})[node[addr]] = (int(ent), int(tomb), h)
    return out


def check_listings(c, nodes, rep3, timeout=90):
    """Until every listing is held by exactly its partition's rep3 primaries
    (device i is node i) and identically; returns the listings."""
    deadline = time.time() + timeout
    while True:
        ls = node_listings(c, nodes)
        bad = [(k, sorted(held), rep3[k[0]]) for k, held in ls.items()
               if set(held) != set(rep3[k[0]]) or len(set(held.values())) != 1]
        if not bad:
            return ls
        assert time.time() < deadline, f"listings not at their placement: {bad[:4]}"
        time.sleep(1)


def list_all(cl, buckets):
    """Every bucket lists exactly its acknowledged keys."""
    for b, keys in buckets.items():
        got = []
        for page in cl.get_paginator("list_objects_v2").paginate(
                Bucket=b, PaginationConfig={"PageSize": 7}):
            got += [o["Key"] for o in page.get("Contents", [])]
        assert got == sorted(keys), (b, len(got), len(keys),
                                     sorted(set(keys) - set(got))[:5])


def moved_listings(ls, old, new):
    """Listing placements the ring change moved."""
    return sum(a != b for (part, _) in ls for a, b in zip(old[part], new[part]))


def listing_totals(c):
    tot = {"pushed": 0, "dropped": 0, "entries": 0}
    for i in range(len(c.repairds)):
        st = c.status(i) if c.repairds[i] is not None else None
        if st:
            tot["dropped"] += st.get("total_listings_dropped", 0)
            tot["entries"] += st.get("total_listing_entries", 0)
    return tot


def node_misses(c):
    """GETs the nodes answered "no such fragment" (STAT misses, as the repair
    daemons last polled it: every 3 s)."""
    time.sleep(3.5)
    return sum(((c.status(i) or {}).get("node_audit") or {}).get("misses", 0)
               for i in range(len(c.repairds)) if c.repairds[i] is not None)


def handoff_reads(c, acked, sizes, assign):
    """EC objects written while node 3 is down have that fragment on a
    handoff (with 7 nodes an EC partition has one spare), which the head
    records. Once repair moved it home and the handoff dropped its copy, a
    read asks the ring placement first: no GET answered "no such fragment"
    (asking the recorded handoff first would miss once per such fragment)."""
    x = 2
    s3 = c.client()
    c.repairds[x].stop()
    c.nodes[x].stop()
    time.sleep(1.2)
    keys = {f"ho{i}": 200 * KiB + 1000 * i for i in range(8)}	# EC (> SMALL_MAX)
    sums = dt.put_all(s3, BUCKET, keys)
    acked.update(sums)
    sizes.update(keys)
    parts = partitions(c, keys)
    # (only data fragments are read when all are there: 0..3 of 4+2)
    homed = sum(x in assign["ec42"][parts[k][1]][:4] for k in keys)
    assert homed > 0, "no data fragment placed on node 3"
    others = [i for i in range(len(c.repairds)) if i != x and c.repairds[i] is not None]
    purged = sum((c.status(i) or {}).get("total_purged", 0) for i in others)
    c.nodes[x].start()
    c.repairds[x].start()
    t0 = time.time()
    c.wait_clean(t0, nodes=range(len(c.nodes)))	# pushed home, then purged
    # home again (the node's daemon copies it, or the handoff's pushes it),
    # then the handoffs dropped their copies
    purged = sum(c.status(i).get("total_purged", 0) for i in others) - purged
    assert purged >= homed, (purged, homed)
    m0 = node_misses(c)
    dt.verify_all(s3, BUCKET, sums)
    m1 = node_misses(c)
    print(f"  handoff reads: {homed} of {len(keys)} EC objects had a fragment on a handoff "
          f"(moved home, {purged} handoff copies purged); reading them: {m1 - m0} GETs missed")
    assert m1 == m0, (m0, m1)


def listing_caps(c):
    """Listing pulls are repair traffic: a node pulling a 2 MB listing it
    lacks (written to another primary only) under --max-mbps takes at least
    the bytes it read and wrote (from its status) over the cap."""
    rep3 = assignments({"rep3": os.path.join(c.rings, "rep3.ring")})["rep3"]
    part, cap = 5, 1.0
    a, b = rep3[part][0], rep3[part][1]
    c.repairds[b].stop()
    took, moved = {}, {}
    try:
        for lid, mbps in (("c0" * 16, cap), ("c1" * 16, 0)):
            r = subprocess.run([NODE_FRAGS, "--listing-put", c.addr(a), str(part), lid,
                                "--fill", "512", "4000"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            st = os.path.join(c.dir, f"caps-{lid[:2]}.status")
            t0 = time.time()
            r = subprocess.run([REPAIRD, "--node-id", c.addr(b), "--rings", c.rings, "--once",
                                "--max-mbps", str(mbps), "--status", st],
                               capture_output=True, text=True, timeout=300)
            took[mbps] = time.time() - t0
            assert r.returncode in (0, 1), r.stderr[-2000:]
            with open(st) as f:
                s = json.load(f)
            moved[mbps] = s["bytes_read"] + s["bytes_written"]
            held = node_listings(c, [a, b]).get((part, lid), {})
            assert len(set(held.values())) == 1 and set(held) == {a, b}, held
            assert held[b][0] == 512, held
    finally:
        c.repairds[b].start()
    print(f"  listing caps: a 512-key, 2 MB listing pulled in {took[cap]:.1f} s at "
          f"--max-mbps {cap:g} ({moved[cap] / 1e6:.1f} MB read + written), "
          f"{took[0]:.1f} s uncapped ({moved[0] / 1e6:.1f} MB); load {os.getloadavg()[0]:.2f}")
    assert moved[cap] >= 2 * 512 * 4000, moved
    # the first request starts without waiting, the last one's debt is not waited for
    assert took[cap] >= moved[cap] / (cap * 1e6) - 2.5, (took, moved)


def test_rebalance(c):
    s3 = c.s3
    listing_caps(c)
    s3.create_bucket(Bucket=BUCKET)
    n = 48 if LONG else 16
    sizes = {f"base{i}": sz for i, sz in enumerate(dt.sizes(n))}
    acked = dt.put_all(s3, BUCKET, sizes)
    sizes = dict(sizes)
    base = dict(sizes)
    small = {}
    for b in BUCKETS:
        s3.create_bucket(Bucket=b)
        small[b] = dt.put_all(s3, b, {f"k{i}-{b}": 200 + i for i in range(4)})
    # a multipart upload in progress across both phases (its parts listing,
    # the bucket's uploads listing and its record move with the rings)
    mkey = "mpu-rebal"
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=mkey)["UploadId"]
    mparts = [dt.data_of(5 * MiB, "mp1"), dt.data_of(200 * KiB, "mp2")]
    etags = [s3.upload_part(Bucket=BUCKET, Key=mkey, UploadId=up, PartNumber=1,
                            Body=mparts[0])["ETag"]]
    tmp = os.path.join(c.dir, "new")
    os.makedirs(tmp)
    cur = {n: os.path.join(c.rings, n + ".ring") for n in RINGS}
    old_assign = assignments(cur)

    # 1. add a 7th node under load
    load = Load(c, acked, sizes, "a")
    time.sleep(2)
    new_node = add_node(c)
    before = moved_counts(c)
    report, new = {}, {}
    for name in RINGS:
        new[name] = os.path.join(tmp, name + ".ring")
        report[name] = rebalance_to(
            c, name, new[name], "add", "{b}", "--region", "1", "--zone", str(new_node + 1),
            "--node", c.addr(new_node), "--name", "d0", "--weight", "100")
    t_push = time.time()
    print("  " + push(c, new.values()).replace("\n", "\n  "))
    # an old ring pushed again is refused
    r = admin(c, "ring", "push", cur["ec42"] + ".prev", "--as", "ec42")
    assert r.returncode == 1 and "not newer" in r.stderr, (r.stdout, r.stderr)
    start_repaird(c, new_node)
    wait_log(c.gw, "in use (was v")
    # The load goes on while data moves; stopped before waiting for the end
    # (a pass seeing a PUT half written is not clean, so the end is judged
    # on a quiet cluster, as in durability_test's kill9).
    time.sleep(6 if not LONG else 30)
    res = load.stop()
    during = moved_counts(c)
    t_done = wait_moved(c, 240)
    after = moved_counts(c)
    print(f"  add node: {res}; movement done {t_done - t_push:.1f} s after the push "
          f"({sum(during[k] - before[k] for k in ('pushed', 'copied', 'rebuilt'))} placements "
          f"moved while the load ran); load {os.getloadavg()[0]:.2f}")
    assert not load.get_errors, load.get_errors[:5]
    dt.verify_all(s3, BUCKET, acked)
    new_assign = assignments(cur)
    parts = partitions(c, sizes)
    lo = ideal_moves(base, parts, old_assign, new_assign)
    hi = ideal_moves(sizes, parts, old_assign, new_assign)
    got = sum(after[k] - before[k] for k in ("pushed", "copied", "rebuilt"))
    print(f"  add node: builder moved {report['ec42']['moved']}/{report['ec42']['placements']} "
          f"EC and {report['rep3']['moved']}/{report['rep3']['placements']} rep3 placements; "
          f"objects' placements to move {lo} (base) .. {hi} (all acknowledged); moved "
          f"{got} ({after['pushed'] - before['pushed']} pushed, "
          f"{after['copied'] - before['copied']} copied, "
          f"{after['rebuilt'] - before['rebuilt']} rebuilt), "
          f"{(after['bytes'] - before['bytes']) / 1e6:.1f} MB pushed")
    # Beyond the objects: bucket records, and writes that went to a handoff
    # while a node was slow under load (pushed home, counted the same).
    assert lo <= got <= hi * 1.25 + 16, (lo, got, hi)
    check_nodes(c, range(len(c.nodes)))
    ls = check_listings(c, range(len(c.nodes)), new_assign["rep3"])
    list_all(s3, {BUCKET: acked, **small})
    ups = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in ups] == [(mkey, up)], ups
    handoff_reads(c, acked, sizes, new_assign)
    etags.append(s3.upload_part(Bucket=BUCKET, Key=mkey, UploadId=up, PartNumber=2,
                                Body=mparts[1])["ETag"])
    lt = listing_totals(c)
    print(f"  add node: {len(ls)} listings, "
          f"{moved_listings(ls, old_assign['rep3'], new_assign['rep3'])} listing placements "
          f"moved; {lt['dropped']} dropped by previous holders; all at their placement, "
          f"every bucket lists every key")

    # 2. drain node 1 (weight 0), then remove it, under load
    victim = 0
    old_assign = new_assign
    t0 = time.time()
    for name in RINGS:
        report[name] = rebalance_to(c, name, new[name], "set-weight", "{b}", "0", "0")
    # pushed before the load starts: ring push refuses while a daemon's last
    # pass still had work of the previous change, and on this loaded machine
    # a pass under load may find a node slow to answer
    push(c, new.values())
    # A listing that only node 1 holds, as it leaves: it must reach the new
    # placement before node 1 drops it.
    lpart = next(p for p, devs in enumerate(old_assign["rep3"]) if 0 in devs)
    lid = "5a" * 16
    r = subprocess.run([NODE_FRAGS, "--listing-put", c.addr(victim), str(lpart), lid,
                        "only-a", "only-b", "only-c"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    load = Load(c, acked, sizes, "b")
    time.sleep(6 if not LONG else 30)
    res = load.stop()
    wait_moved(c, 240)
    t_drain = time.time() - t0
    drained = assignments(cur)
    for name in drained:
        assert not any(0 in p for p in drained[name]), f"{name}: device 0 still placed"
    ls = check_listings(c, range(len(c.nodes)), drained["rep3"])	# node 1: none left
    held = set(ls.get((lpart, lid), {}).values())	# (identical on its 3 holders)
    assert len(held) == 1 and next(iter(held))[:2] == (3, 0), held
    lt2 = listing_totals(c)
    print(f"  drain: {moved_listings(ls, old_assign['rep3'], drained['rep3'])} listing "
          f"placements moved, {lt2['dropped'] - lt['dropped']} dropped by node1; the listing "
          f"only node1 held is on its 3 new holders")
    for name in RINGS:
        report[name] = rebalance_to(c, name, new[name], "remove", "{b}", "0")
        assert report[name]["moved"] == 0, report[name]
    push(c, new.values())
    wait_moved(c, 120)
    # settled: the .prev files go, the gateway stops consulting them
    with open(cur["rep3"] + ".prev", "rb") as f:
        stale_rep3 = f.read()
    r = admin(c, "ring", "settle")
    assert r.returncode == 0 and not os.path.exists(cur["ec42"] + ".prev"), (r.stdout, r.stderr)
    wait_log(c.gw, "previous placement v")
    print(f"  drain node{victim + 1}: {res}; drained in {t_drain:.1f} s, removed; "
          f"load {os.getloadavg()[0]:.2f}")
    assert not load.get_errors, load.get_errors[:5]
    assert c.repairds[victim].stop() == 0
    assert c.nodes[victim].stop() == 0
    c.repairds[victim] = None
    time.sleep(1.5)
    dt.verify_all(c.client(), BUCKET, acked)
    rest = [i for i in range(len(c.nodes)) if i != victim]
    check_nodes(c, rest)
    check_listings(c, rest, assignments(cur)["rep3"])
    cl = c.client()
    list_all(cl, {BUCKET: acked, **small})
    for b, sums in small.items():
        dt.verify_all(cl, b, sums)
    cl.complete_multipart_upload(Bucket=BUCKET, Key=mkey, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    dt.verify_all(cl, BUCKET, {mkey: hashlib.sha256(b"".join(mparts)).hexdigest()})

    # 3. an older ring put back by hand is refused; everything keeps working
    tmpf = cur["rep3"] + ".tmp"
    with open(tmpf, "wb") as g:
        g.write(stale_rep3)
    os.rename(tmpf, cur["rep3"])
    wait_log(c.gw, "refused")
    wait_log(c.repairds[rest[0]], "refused")
    dt.verify_all(c.client(), BUCKET, dict(list(acked.items())[:8]))
    print(f"  {len(acked)} objects read back identical; a stale ring was refused")


def main():
    if not NODE_FRAGS:
        print("SKIPPED: STRATA_NODE_FRAGS (tests/node-frags) is not set")
        sys.exit(77)
    c = dt.Cluster("rebal")
    failed = False
    try:
        c.settle()
        t = time.time()
        test_rebalance(c)
        print(f"ok   rebalance ({time.time() - t:.1f} s)")
    except Exception:
        print("FAIL rebalance")
        traceback.print_exc()
        failed = True
    finally:
        rc = {}
        for d in [c.gw] + [x for x in c.repairds if x] + c.nodes:
            if d.proc and d.proc.poll() is None:
                rc[d.name] = d.stop()
    if any(v not in (0, None) for v in rc.values()):
        print(f"FAIL exit codes {rc}")
        failed = True
    if failed or os.environ.get("STRATA_TEST_KEEP"):
        print(f"logs kept in {dt.TMP}")
        sys.exit(1 if failed else 0)
    import shutil
    shutil.rmtree(dt.TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
