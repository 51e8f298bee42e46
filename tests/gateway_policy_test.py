#!/usr/bin/python3
"""Integration test of storage policies in strata-gateway (docs/gateway.md,
"Storage policies"): 6 real storage nodes with two EC rings over them, ec42
(the default, index 0) and ec12 (EC 1+2: 3 copies, index 1), the gateway,
boto3 and the AWS CLI.

usage: gateway_policy_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]

Buckets choose their policy at creation (x-strata-storage-policy, or Ceph's
LocationConstraint REGION:POLICY); objects, multipart uploads and copies land
on their bucket's ring under its fragment numbers (node-frags --keys against
strata-ring lookup), read back whole, by range and degraded. Reuses
gateway_test.py's cluster; exits 77 when boto3 or the AWS CLI is missing.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (parses argv, skips without boto3)
from cluster import with_headers  # noqa: E402

MiB = gt.MiB
S3 = None
C = None
B42, B12H, B12L = "pol-ec42", "pol-ec12-hdr", "pol-ec12-loc"
OWNER = "default"             # the credentials profile: the account


def err_code(fn):
    return gt.err_code(fn)


def policy_of(bucket):
    h = S3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    return h.get("x-strata-storage-policy")


def aws(*args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=gt.cluster.KEY1,
               AWS_SECRET_ACCESS_KEY=gt.cluster.SECRET1, AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return subprocess.run(["aws", "--endpoint-url", C.url, *args], env=env, check=check,
                          capture_output=True, text=True, timeout=120)


def node_keys():
    """{(node, part, frag, size, name)} of every live fragment (node-frags --keys)."""
    tool = os.environ.get("STRATA_NODE_FRAGS")
    assert tool, "STRATA_NODE_FRAGS (the node-frags binary) is not set"
    out = subprocess.run([tool, "--keys", "8", *[C.addr(i) for i in range(gt.NODES)]],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    keys = set()
    for line in out.splitlines():
        node, part, frag, size, name = line.split()
        keys.add((node, int(part), int(frag), int(size), name))
    return keys


def placement(ring, bucket, key, path=None):
    """(partition, [node of placement i]) of the object under ring (its
    file in the cluster's rings, or path)."""
    out = subprocess.run([gt.RING, "lookup", path or os.path.join(C.rings, ring + ".ring"),
                          f"/{OWNER}/{bucket}/{key}", "--json"],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["partition"], [d["node"] for d in j["primaries"]]


def head_name(bucket, key):
    return hashlib.sha256(f"/{OWNER}/{bucket}/{key}".encode()).digest()[:16].hex()


def new_frags(before, bucket, key):
    """The fragments that appeared since before, but the head's replicas."""
    hn = head_name(bucket, key)
    return {k for k in node_keys() - before if k[4] != hn}


def check_frags(frags, ring, bucket, key, nsegs, index, k, m):
    """nsegs segments of k+m fragments numbered index << 8 | i, each on the
    node of placement i of the object's partition."""
    part, nodes = placement(ring, bucket, key)
    assert len(nodes) == k + m
    by_name = {}
    for node, p, frag, size, name in frags:
        assert p == part, (p, part)
        assert frag >> 8 == index and (frag & 255) < k + m, frag
        assert node == nodes[frag & 255], (frag, node, nodes)
        by_name.setdefault(name, []).append(frag)
    assert len(by_name) == nsegs, (len(by_name), nsegs)
    for name, fl in by_name.items():
        assert sorted(fl) == [index << 8 | i for i in range(k + m)], (name, fl)


def get_ok(bucket, key, body):
    g = S3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert g == body, (bucket, key, len(g), len(body))
    h = S3.head_object(Bucket=bucket, Key=key)
    assert h["ContentLength"] == len(body)
    if len(body) > 10:
        a, b = len(body) // 3, len(body) // 3 + len(body) // 4
        r = S3.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b}")["Body"].read()
        assert r == body[a:b + 1], (bucket, key, a, b)


def test_create():
    """Default, header and LocationConstraint choices (boto3), shown by
    HeadBucket; unknown policies refused with nothing written."""
    S3.create_bucket(Bucket=B42)
    with_headers(C.client(), "CreateBucket", {"x-strata-storage-policy": "ec12"}).create_bucket(Bucket=B12H)
    S3.create_bucket(Bucket=B12L,
                     CreateBucketConfiguration={"LocationConstraint": "us-east-1:ec12"})
    assert policy_of(B42) == "ec42"
    assert policy_of(B12H) == "ec12"
    assert policy_of(B12L) == "ec12"
    # the region part is the bucket's location
    assert S3.get_bucket_location(Bucket=B12L)["LocationConstraint"] in ("us-east-1", None, "")
    bad = with_headers(C.client(), "CreateBucket", {"x-strata-storage-policy": "ec99"})
    assert err_code(lambda: bad.create_bucket(Bucket="pol-bad1")) == ("InvalidArgument", 400)
    assert err_code(lambda: S3.create_bucket(
        Bucket="pol-bad2", CreateBucketConfiguration={"LocationConstraint": ":ec99"})) == \
        ("InvalidLocationConstraint", 400)
    assert err_code(lambda: S3.create_bucket(
        Bucket="pol-bad3", CreateBucketConfiguration={"LocationConstraint": "eu-west-9:ec12"})) == \
        ("InvalidLocationConstraint", 400)
    both = with_headers(C.client(), "CreateBucket", {"x-strata-storage-policy": "ec42"})
    assert err_code(lambda: both.create_bucket(
        Bucket="pol-bad4", CreateBucketConfiguration={"LocationConstraint": ":ec12"})) == \
        ("InvalidArgument", 400)
    for b in ("pol-bad1", "pol-bad2", "pol-bad3", "pol-bad4"):
        assert err_code(lambda: S3.head_bucket(Bucket=b))[1] == 404, b
    # the policy cannot change: a re-create leaves the bucket as it was
    with_headers(C.client(), "CreateBucket", {"x-strata-storage-policy": "ec42"}).create_bucket(Bucket=B12H)
    assert policy_of(B12H) == "ec12"


def test_awscli():
    """awscli: create-bucket with LocationConstraint=:ec12, cp up and down."""
    aws("s3api", "create-bucket", "--bucket", "pol-cli",
        "--create-bucket-configuration", "LocationConstraint=:ec12")
    assert policy_of("pol-cli") == "ec12"
    src = os.path.join(gt.TMP, "cli-src")
    body = gt.data_of(9 * MiB + 5, 41)
    with open(src, "wb") as f:
        f.write(body)
    aws("s3", "cp", src, "s3://pol-cli/big")      # multipart (8 MiB parts)
    aws("s3", "cp", "s3://pol-cli/big", src + ".back")
    with open(src + ".back", "rb") as f:
        assert f.read() == body
    r = aws("s3api", "create-bucket", "--bucket", "pol-cli2",
            "--create-bucket-configuration", "LocationConstraint=:nosuch", check=False)
    assert r.returncode != 0 and "InvalidLocationConstraint" in r.stderr, r.stderr


def test_objects():
    """Small (inline on rep3), 5 MiB and multipart objects on each policy:
    whole, ranged and HEAD read back the right bytes."""
    for b in (B42, B12H, B12L):
        for size in (100, 5 * MiB):
            body = gt.data_of(size, size + len(b))
            S3.put_object(Bucket=b, Key=f"o{size}", Body=body)
            get_ok(b, f"o{size}", body)
        parts = [gt.data_of(5 * MiB, 7), gt.data_of(MiB + 3, 8)]
        up = S3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
        done = []
        for n, p in enumerate(parts, 1):
            e = S3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=n, Body=p)["ETag"]
            done.append({"PartNumber": n, "ETag": e})
        S3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up,
                                     MultipartUpload={"Parts": done})
        get_ok(b, "mp", b"".join(parts))
        p2 = S3.get_object(Bucket=b, Key="mp", PartNumber=2)["Body"].read()
        assert p2 == parts[1]
        a = S3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"])
        assert a["ObjectParts"]["TotalPartsCount"] == 2


def test_frags():
    """Fragments land where each ring says, under the policy's numbers:
    ec12 3 per segment (256, 257, 258: 1 MiB segments), ec42 6 (0..5: 4 MiB);
    a delete takes them away."""
    before = node_keys()
    body = gt.data_of(3 * MiB + 5, 55)
    S3.put_object(Bucket=B12H, Key="frags", Body=body)
    f12 = new_frags(before, B12H, "frags")
    check_frags(f12, "ec12", B12H, "frags", 4, 1, 1, 2)
    # k = 1: every fragment is a byte-identical copy, as long as its segment
    # (the last one's 5 bytes padded to GW_EC_ALIGN)
    for frag in (256, 257, 258):
        assert sorted(k[3] for k in f12 if k[2] == frag) == [64, MiB, MiB, MiB], f12
    before = node_keys()
    S3.put_object(Bucket=B42, Key="frags", Body=gt.data_of(5 * MiB, 56))
    check_frags(new_frags(before, B42, "frags"), "ec42", B42, "frags", 2, 0, 4, 2)
    # copies between policies: the destination bucket's
    before = node_keys()
    S3.copy_object(Bucket=B42, Key="from12", CopySource={"Bucket": B12H, "Key": "frags"})
    check_frags(new_frags(before, B42, "from12"), "ec42", B42, "from12", 1, 0, 4, 2)
    get_ok(B42, "from12", body)
    before = node_keys()
    S3.copy_object(Bucket=B12L, Key="back", CopySource={"Bucket": B42, "Key": "from12"})
    fback = new_frags(before, B12L, "back")
    check_frags(fback, "ec12", B12L, "back", 4, 1, 1, 2)
    get_ok(B12L, "back", body)
    # multipart on ec12: every part's segments under 256..258
    before = node_keys()
    up = S3.create_multipart_upload(Bucket=B12H, Key="mpf")["UploadId"]
    e1 = S3.upload_part(Bucket=B12H, Key="mpf", UploadId=up, PartNumber=1,
                        Body=gt.data_of(5 * MiB, 57))["ETag"]
    e2 = S3.upload_part_copy(Bucket=B12H, Key="mpf", UploadId=up, PartNumber=2,
                             CopySource={"Bucket": B42, "Key": "frags"},
                             CopySourceRange="bytes=0-2097151")["CopyPartResult"]["ETag"]
    S3.complete_multipart_upload(Bucket=B12H, Key="mpf", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    check_frags(new_frags(before, B12H, "mpf"), "ec12", B12H, "mpf", 7, 1, 1, 2)
    get_ok(B12H, "mpf", gt.data_of(5 * MiB, 57) + gt.data_of(5 * MiB, 56)[:2 * MiB])
    # an aborted upload's parts, a delete and an overwrite leave none of
    # theirs live
    before = node_keys()
    up = S3.create_multipart_upload(Bucket=B12L, Key="aborted")["UploadId"]
    S3.upload_part(Bucket=B12L, Key="aborted", UploadId=up, PartNumber=1,
                   Body=gt.data_of(2 * MiB, 58))
    fab = {k for k in node_keys() - before if k[2] >> 8 == 1}
    assert len(fab) == 2 * 3, fab
    S3.abort_multipart_upload(Bucket=B12L, Key="aborted", UploadId=up)
    S3.delete_object(Bucket=B12H, Key="frags")
    S3.put_object(Bucket=B12L, Key="back", Body=b"small now")
    gone = {x[4] for x in f12 | fback | fab}
    deadline = time.time() + 20
    while time.time() < deadline:
        live = {k for k in node_keys() if k[4] in gone}
        if not live:
            break
        time.sleep(0.5)
    assert not live, live
    assert S3.get_object(Bucket=B12L, Key="back")["Body"].read() == b"small now"


def nodes_back():
    """After stopped nodes started again: until the gateway writes to all 6
    again (it skips a failed node for --down-ms, doubling per failure), as
    an ec42 PUT needs."""
    deadline = time.time() + 20
    while True:
        try:
            S3.put_object(Bucket=B42, Key="probe", Body=gt.data_of(MiB, 1))
            return
        except gt.botocore.exceptions.ClientError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def test_degraded():
    """An ec12 object with 2 of its 3 nodes stopped (m = 2) reads back."""
    body = gt.data_of(4 * MiB + 999, 61)
    S3.put_object(Bucket=B12H, Key="degraded", Body=body)
    _, nodes = placement("ec12", B12H, "degraded")
    stopped = [i for i in range(gt.NODES) if C.addr(i) in nodes[:2]]
    assert len(stopped) == 2
    for i in stopped:
        C.nodes[i].stop()
    try:
        for _ in range(2):      # the second read: the nodes known down
            get_ok(B12H, "degraded", body)
    finally:
        for i in stopped:
            C.nodes[i].start()
        nodes_back()


def node_reads(addrs):
    """{node: fragment reads since it started} (STAT, strata-admin tiers)."""
    admin = os.path.join(os.path.dirname(gt.STORAGED), "strata-admin")
    out = subprocess.run([admin, "tiers", "--json", *[a for n in addrs for a in ("--node", n)]],
                         check=True, capture_output=True, text=True).stdout
    reads = {}
    for line in out.splitlines():
        j = json.loads(line)
        reads[j["node"]] = sum(m["reads"] for m in j["media"].values())
    return reads


def test_reads_spread():
    """ec12's copies are byte-identical: a GET's segments take turns over
    them, so every copy's node serves reads (reading placement 0 alone, as
    k data fragments are read for ec42, left the other two idle)."""
    body = gt.data_of(4 * MiB + 77, 67)     # 5 segments of 1 MiB
    S3.put_object(Bucket=B12H, Key="spread", Body=body)
    _, nodes = placement("ec12", B12H, "spread")
    before = node_reads(nodes)
    for _ in range(3):
        assert S3.get_object(Bucket=B12H, Key="spread")["Body"].read() == body
    after = node_reads(nodes)
    grew = {n: after[n] - before[n] for n in nodes}
    assert all(g >= 3 for g in grew.values()), grew


def test_handoff():
    """An ec12 PUT with placement 0's node stopped goes to a handoff (the
    head records it); with that node back and the other two placements'
    stopped, the GET reads the copy at the recorded handoff."""
    key = "handoff"
    body = gt.data_of(3 * MiB + 11, 63)
    _, nodes = placement("ec12", B12H, key)
    idx = [next(i for i in range(gt.NODES) if C.addr(i) == n) for n in nodes]
    before = node_keys()
    C.nodes[idx[0]].stop()
    try:
        S3.put_object(Bucket=B12H, Key=key, Body=body)
    finally:
        C.nodes[idx[0]].start()
    frags = new_frags(before, B12H, key)
    at = {(k[0], k[2]) for k in frags}
    assert len(frags) == 4 * 3, frags
    handoffs = {n for n, f in at if f == 256}
    assert nodes[0] not in handoffs and len(handoffs) == 1, (handoffs, nodes)
    assert {n for n, f in at if f == 257} == {nodes[1]}
    time.sleep(1.2)     # (--down-ms: the restarted node is asked again)
    for i in idx[1:]:
        C.nodes[i].stop()
    try:
        get_ok(B12H, key, body)
    finally:
        for i in idx[1:]:
            C.nodes[i].start()
        nodes_back()


def test_ring_reload():
    """A new ec12 ring (a rebalance) is picked up like any ring file:
    objects written before still read (the previous placement), new ones go
    where the new ring says."""
    body = gt.data_of(2 * MiB + 3, 65)
    keys = [f"reload/{i}" for i in range(12)]
    for k in keys:
        S3.put_object(Bucket=B12L, Key=k, Body=body)
    b = os.path.join(C.rings, "ec12.builder")
    ring = os.path.join(C.rings, "ec12.ring")
    gt.cluster.ring_run(gt.RING, "set-weight", b, "0", "20")
    gt.cluster.ring_run(gt.RING, "rebalance", b, "--ring", ring + ".new", "--now-hours", "1000")
    shutil.copy(ring, ring + ".prev")
    os.replace(ring + ".new", ring)
    deadline = time.time() + 10
    while "ec12.ring: v" not in C.gw.log_text() and time.time() < deadline:
        time.sleep(0.2)
    assert "ec12.ring: v" in C.gw.log_text() and "in use" in C.gw.log_text()
    moved = [k for k in keys if placement("ec12", B12L, k)[1] !=
             placement("ec12", B12L, k, ring + ".prev")[1]]
    assert moved, "the new ring moves none of them: weight change too small"
    for k in keys:
        get_ok(B12L, k, body)
    before = node_keys()
    S3.put_object(Bucket=B12L, Key="reload/new", Body=body)
    check_frags(new_frags(before, B12L, "reload/new"), "ec12", B12L, "reload/new", 3, 1, 1, 2)
    print(f"    {len(moved)} of {len(keys)} objects' placements moved by the new ring",
          flush=True)


def second_gateway(name, rings):
    """A gateway on the cluster's nodes with the ring files rings (names)."""
    d = os.path.join(gt.TMP, name)
    os.makedirs(d)
    for r in rings:
        shutil.copy(os.path.join(C.rings, r), os.path.join(d, os.path.basename(r)))
    pf = os.path.join(gt.TMP, name + ".port")
    return d, pf, [gt.GATEWAY, "--listen", "127.0.0.1:0", "--port-file", pf, "--rings", d,
                   "--credentials", C.creds, "--read-deadline-ms", "500"]


def test_missing_ring():
    """A gateway without ec12's ring: the ec12 objects and bucket answer
    503 (logged), never wrong bytes, and it stays up; ec42 serves."""
    body = gt.data_of(2 * MiB, 71)
    S3.put_object(Bucket=B12H, Key="noring", Body=body)
    S3.put_object(Bucket=B42, Key="noring", Body=body)
    S3.put_object(Bucket=B12H, Key="small", Body=b"inline")
    _, pf, args = second_gateway("gw-no-ec12", ["rep3.ring", "ec42.ring"])
    gw = gt.Daemon("gw-no-ec12", args, port_file=pf)
    try:
        url, C.url = C.url, f"http://127.0.0.1:{gw.port}"
        c = C.client()
        C.url = url
        assert err_code(lambda: c.get_object(Bucket=B12H, Key="noring")) == \
            ("ServiceUnavailable", 503)
        assert err_code(lambda: c.put_object(Bucket=B12H, Key="new", Body=body)) == \
            ("ServiceUnavailable", 503)
        assert err_code(lambda: c.delete_object(Bucket=B12H, Key="noring")) == \
            ("ServiceUnavailable", 503)
        # inline objects live on rep3 whatever the policy
        assert c.get_object(Bucket=B12H, Key="small")["Body"].read() == b"inline"
        assert c.get_object(Bucket=B42, Key="noring")["Body"].read() == body
        assert gw.running()
        assert "no ring here" in gw.log_text()
    finally:
        assert gw.stop() == 0
    get_ok(B12H, "noring", body)


def test_same_index():
    """Two EC rings with one policy index: the gateway refuses to start."""
    d, pf, args = second_gateway("gw-same-index", ["rep3.ring", "ec42.ring"])
    shutil.copy(os.path.join(d, "ec42.ring"), os.path.join(d, "ec42b.ring"))
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "both have policy index 0" in r.stdout + r.stderr, r


TESTS = [test_create, test_awscli, test_objects, test_frags, test_degraded, test_reads_spread,
         test_handoff,
         test_missing_ring, test_same_index, test_ring_reload]


def main():
    global C, S3
    C = gt.Cluster()
    gt.C = C
    S3 = C.client()
    return gt.cluster.run(C, TESTS, gt.ONLY)


if __name__ == "__main__":
    sys.exit(main())
