#!/usr/bin/python3
"""Tiering through S3 (issue 6, docs/tiering.md "Gateway"): 6 real storage
nodes with hot/ and cold/ folders, strata-gateway, boto3.

usage: gateway_tier_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]

The nodes scan every second (--tier-scan-interval 1, --atime-interval 1) with
a node-wide cold_after of an hour, so only what a bucket policy, a storage
class or a lifecycle rule says moves during the test; the gateway's
lifecycle day is one second (--lifecycle-day-seconds 1). Where an object's
bytes are is checked in the nodes' volume files themselves.
"""
import hashlib
import http.client
import json
import mmap
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (parses the same argv, skips without boto3)
from gateway_test import err_code  # noqa: E402

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY1, SECRET1 = "STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"
KEY2, SECRET2 = "STRATATESTKEY0002", "secretsecretsecretsecretsecret0002"
NODE_ARGS = ["--cold-after", "3600", "--tier-scan-interval", "1", "--atime-interval", "1"]
PASS_RATE = 50      # objects/s of a policy pass: the kill test catches one mid-way


class TierCluster(gt.Cluster):
    """gateway_test's cluster with tiering flags on every node."""

    def __init__(self):
        super().__init__(gw_args=["--lifecycle-day-seconds", "1", "--tier-pass-rate",
                                  str(PASS_RATE), "--tier-pass-check-ms", "1000"],
                         node_args=NODE_ARGS)
        self.node_dirs = [os.path.join(gt.TMP, f"node{i + 1}") for i in range(gt.NODES)]


C = None
S3 = None


def signed(method, path, headers=None, body=b"", key=KEY1, secret=SECRET1, sign=True):
    """A raw request (extensions boto3 does not model): (status, headers, body)."""
    url = C.url + path
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    if sign:
        SigV4Auth(Credentials(key, secret), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", C.gw.port, timeout=30)
    conn.request(method, path, body=body, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    out = (resp.status, dict(resp.getheaders()), resp.read())
    conn.close()
    return out


def where(needle):
    """(nodes whose hot volumes hold needle, nodes whose cold volumes do)."""
    found = {"hot": 0, "cold": 0}
    for d in C.node_dirs:
        for medium in found:
            hit = False
            for root, _, files in os.walk(os.path.join(d, medium)):
                for f in files:
                    p = os.path.join(root, f)
                    if not f.startswith("vol-") or os.path.getsize(p) == 0:
                        continue
                    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                        if m.find(needle) >= 0:
                            hit = True
                            break
                if hit:
                    break
            found[medium] += hit
    return found["hot"], found["cold"]


def body_of(size, seed):
    return gt.data_of(size, f"tier-{seed}")


def wait_for(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"not after {timeout} s: {what}")


def admin_tiers(key=KEY1, secret=SECRET1):
    st, _, body = signed("GET", "/_strata/tiers", key=key, secret=secret)
    return st, (json.loads(body) if st == 200 else body)


# ---------------------------------------------------------------- tests


def test_storage_class():
    b = "classes"
    S3.create_bucket(Bucket=b)
    objs = {"std": (4096, None), "ia": (4096, "STANDARD_IA"), "gir": (3000, "GLACIER_IR"),
            "it": (2000, "INTELLIGENT_TIERING"), "ia-ec": (3 * gt.MiB + 5, "STANDARD_IA"),
            "explicit-std": (100, "STANDARD")}
    bodies = {}
    for k, (size, sc) in objs.items():
        bodies[k] = body_of(size, k)
        kw = {"StorageClass": sc} if sc else {}
        S3.put_object(Bucket=b, Key=k, Body=bodies[k], **kw)
    for bad in ("GLACIER", "DEEP_ARCHIVE", "BOGUS", "standard_ia"):
        assert err_code(lambda: S3.put_object(Bucket=b, Key="bad", Body=b"x", StorageClass=bad)) \
            == ("InvalidStorageClass", 400), bad
    assert err_code(lambda: S3.head_object(Bucket=b, Key="bad"))[1] == 404
    for k, (size, sc) in objs.items():
        h = S3.head_object(Bucket=b, Key=k)
        want = None if sc in (None, "STANDARD") else sc
        assert h.get("StorageClass") == want, (k, h.get("StorageClass"))
        g = S3.get_object(Bucket=b, Key=k)
        assert g.get("StorageClass") == want and g["Body"].read() == bodies[k], k
    for lst in (S3.list_objects_v2(Bucket=b)["Contents"], S3.list_objects(Bucket=b)["Contents"]):
        got = {o["Key"]: o["StorageClass"] for o in lst}
        assert got == {k: sc or "STANDARD" for k, (_, sc) in objs.items()}, got
    # Cold classes land on cold (the head replicas, or the first EC fragment)
    # and never touched hot; STANDARD ones land hot.
    for k in ("ia", "gir", "ia-ec"):
        hot, cold = where(bodies[k][:256])
        assert hot == 0 and cold >= 1, (k, hot, cold)
    hot, cold = where(bodies["ia"])
    assert (hot, cold) == (0, 3), (hot, cold)      # 3 replicas, whole
    for k in ("std", "it"):
        hot, cold = where(bodies[k])
        assert (hot, cold) == (3, 0), (k, hot, cold)

    # CopyObject: onto itself with only a new class (no REPLACE needed), and
    # to a new key; x-amz-storage-class wins over the copied one.
    S3.copy_object(Bucket=b, Key="std", CopySource={"Bucket": b, "Key": "std"},
                   StorageClass="STANDARD_IA")
    assert S3.head_object(Bucket=b, Key="std")["StorageClass"] == "STANDARD_IA"
    assert where(bodies["std"])[1] == 3
    S3.copy_object(Bucket=b, Key="ia-copy", CopySource={"Bucket": b, "Key": "ia"})
    assert S3.head_object(Bucket=b, Key="ia-copy")["StorageClass"] == "STANDARD_IA"
    S3.copy_object(Bucket=b, Key="ia-std", CopySource={"Bucket": b, "Key": "ia"},
                   StorageClass="STANDARD")
    assert "StorageClass" not in S3.head_object(Bucket=b, Key="ia-std")
    assert err_code(lambda: S3.copy_object(Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "ia"},
                                           StorageClass="GLACIER")) == ("InvalidStorageClass", 400)

    # Multipart: the class of CreateMultipartUpload, in both listings, on
    # the parts' fragments and on the completed object.
    assert err_code(lambda: S3.create_multipart_upload(Bucket=b, Key="mp", StorageClass="NOPE")) \
        == ("InvalidStorageClass", 400)
    up = S3.create_multipart_upload(Bucket=b, Key="mp", StorageClass="STANDARD_IA")["UploadId"]
    up2 = S3.create_multipart_upload(Bucket=b, Key="mp-std")["UploadId"]
    ups = {u["Key"]: u["StorageClass"] for u in S3.list_multipart_uploads(Bucket=b)["Uploads"]}
    assert ups == {"mp": "STANDARD_IA", "mp-std": "STANDARD"}, ups
    p1, p2 = body_of(5 * gt.MiB, "p1"), body_of(1000, "p2")
    e1 = S3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = S3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    assert S3.list_parts(Bucket=b, Key="mp", UploadId=up)["StorageClass"] == "STANDARD_IA"
    S3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    p3 = body_of(1000, "p3")     # a part of an upload without a class: hot
    S3.upload_part(Bucket=b, Key="mp-std", UploadId=up2, PartNumber=1, Body=p3)
    hot, cold = where(p3[:256])
    assert hot >= 1 and cold == 0, (hot, cold)
    S3.abort_multipart_upload(Bucket=b, Key="mp-std", UploadId=up2)
    assert S3.head_object(Bucket=b, Key="mp")["StorageClass"] == "STANDARD_IA"
    assert S3.get_object(Bucket=b, Key="mp")["Body"].read() == p1 + p2
    for part in (p1, p2):
        hot, cold = where(part[:256])
        assert hot == 0 and cold >= 1, (hot, cold)


LC_RULE = {"ID": "logs-cold", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
           "Transitions": [{"Days": 2, "StorageClass": "STANDARD_IA"}]}


def test_lifecycle_api():
    b = "lcapi"
    S3.create_bucket(Bucket=b)
    assert err_code(lambda: S3.get_bucket_lifecycle_configuration(Bucket=b)) == \
        ("NoSuchLifecycleConfiguration", 404)
    put = S3.put_bucket_lifecycle_configuration
    exp = {"ID": "e", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 3}}
    assert err_code(lambda: put(Bucket=b, LifecycleConfiguration={"Rules": [exp]})) == \
        ("NotImplemented", 501)
    tag = dict(LC_RULE, Filter={"Tag": {"Key": "a", "Value": "b"}})
    assert err_code(lambda: put(Bucket=b, LifecycleConfiguration={"Rules": [tag]})) == \
        ("NotImplemented", 501)
    glacier = dict(LC_RULE, Transitions=[{"Days": 2, "StorageClass": "GLACIER"}])
    assert err_code(lambda: put(Bucket=b, LifecycleConfiguration={"Rules": [glacier]})) == \
        ("InvalidStorageClass", 400)
    st, _, body = signed("PUT", f"/{b}?lifecycle", body=b"<LifecycleConfiguration><Rule>"
                         b"<Status>Maybe</Status></Rule></LifecycleConfiguration>")
    assert st == 400 and b"MalformedXML" in body, (st, body)
    assert err_code(lambda: S3.get_bucket_lifecycle_configuration(Bucket=b))[1] == 404
    two = [LC_RULE, {"ID": "all", "Filter": {}, "Status": "Disabled",
                     "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}]}]
    put(Bucket=b, LifecycleConfiguration={"Rules": two})
    got = S3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [(r["ID"], r["Status"], r["Filter"].get("Prefix", ""), r["Transitions"])
            for r in got] == [("logs-cold", "Enabled", "logs/", [{"Days": 2, "StorageClass": "STANDARD_IA"}]),
                              ("all", "Disabled", "", [{"Days": 30, "StorageClass": "GLACIER_IR"}])], got
    alt = C.client(KEY2, SECRET2)
    assert err_code(lambda: alt.get_bucket_lifecycle_configuration(Bucket=b))[1] == 403
    # the policy extension keeps the lifecycle, and the other way round
    st, _, _ = signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-pin": "cold"})
    assert st == 200
    st, _, body = signed("GET", f"/{b}?strata-tier")
    assert st == 200 and json.loads(body) == {"pin": "cold", "cold_after": 0,
                                              "lifecycle_rules": 2}, body
    assert signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-pin": "warm"})[0] == 400
    assert signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-cold-after": "-1"})[0] == 400
    S3.delete_bucket_lifecycle(Bucket=b)
    assert err_code(lambda: S3.get_bucket_lifecycle_configuration(Bucket=b))[1] == 404
    st, _, body = signed("GET", f"/{b}?strata-tier")
    assert json.loads(body) == {"pin": "cold", "cold_after": 0, "lifecycle_rules": 0}, body
    # a bucket deleted and created again starts without its policy
    S3.delete_bucket(Bucket=b)
    S3.create_bucket(Bucket=b)
    st, _, body = signed("GET", f"/{b}?strata-tier")
    assert json.loads(body)["pin"] == "none", body
    assert signed("PUT", "/newbucket", {"x-strata-tier-pin": "sideways"})[0] == 400
    assert err_code(lambda: S3.head_bucket(Bucket="newbucket"))[1] == 404


def test_transition_and_pins():
    st, before = admin_tiers()
    assert st == 200 and before["nodes_asked"] == 6 and before["nodes_answered"] == 6, before
    S3.create_bucket(Bucket="lcb")
    S3.put_bucket_lifecycle_configuration(Bucket="lcb", LifecycleConfiguration={"Rules": [LC_RULE]})
    assert signed("PUT", "/pinhot", {"x-strata-tier-pin": "hot",
                                     "x-strata-tier-cold-after": "1"})[0] == 200
    S3.put_bucket_lifecycle_configuration(Bucket="pinhot", LifecycleConfiguration={
        "Rules": [dict(LC_RULE, Filter={"Prefix": ""})]})
    assert signed("PUT", "/fast", {"x-strata-tier-cold-after": "2"})[0] == 200
    S3.create_bucket(Bucket="pincold")
    assert signed("PUT", "/pincold?strata-tier", {"x-strata-tier-pin": "cold"})[0] == 200
    assert json.loads(signed("GET", "/fast?strata-tier")[2])["cold_after"] == 2

    data = {("lcb", "logs/a"): body_of(5000, "la"), ("lcb", "logs/big"): body_of(2 * gt.MiB, "lb"),
            ("lcb", "other/b"): body_of(5000, "ob"), ("pinhot", "x"): body_of(5000, "px"),
            ("fast", "y"): body_of(5000, "fy"), ("pincold", "z"): body_of(5000, "pz")}
    for (b, k), body in data.items():
        S3.put_object(Bucket=b, Key=k, Body=body)
    t0 = time.time()
    # pinned cold: there at once, never on hot
    assert where(data["pincold", "z"]) == (0, 3)
    # the transition (2 "days" of 1 s) and the bucket's cold_after (2 s)
    wait_for(lambda: where(data["lcb", "logs/a"])[1] == 3 and
             where(data["lcb", "logs/big"][:256])[1] >= 1 and
             where(data["fast", "y"])[1] == 3, "lifecycle / cold_after moves")
    moved_after = time.time() - t0
    time.sleep(2)   # two more scans: what stays hot is not just late
    for k in (("lcb", "other/b"), ("pinhot", "x")):
        assert where(data[k]) == (3, 0), k
    for (b, k), body in data.items():   # still whole, wherever it is
        assert S3.get_object(Bucket=b, Key=k)["Body"].read() == body
    # past the rule's days: HEAD, GET and both listings show the rule's
    # class, as S3 does after a transition; moved by the bucket's own
    # cold_after (no rule): still STANDARD; pinned cold: STANDARD_IA; pinned
    # hot (whatever its rules): STANDARD
    assert S3.head_object(Bucket="lcb", Key="logs/a")["StorageClass"] == "STANDARD_IA"
    assert S3.get_object(Bucket="lcb", Key="logs/big")["StorageClass"] == "STANDARD_IA"
    assert "StorageClass" not in S3.head_object(Bucket="lcb", Key="other/b")
    assert "StorageClass" not in S3.head_object(Bucket="fast", Key="y")
    assert S3.head_object(Bucket="pincold", Key="z")["StorageClass"] == "STANDARD_IA"
    assert "StorageClass" not in S3.head_object(Bucket="pinhot", Key="x")
    for b, want in (("lcb", {"logs/a": "STANDARD_IA", "logs/big": "STANDARD_IA", "other/b": "STANDARD"}),
                    ("fast", {"y": "STANDARD"}), ("pincold", {"z": "STANDARD_IA"}),
                    ("pinhot", {"x": "STANDARD"})):
        assert listed_classes(b) == want, (b, listed_classes(b))

    st, after = admin_tiers()
    assert st == 200 and after["nodes_answered"] == 6
    t, t0s = after["total"], before["total"]
    # logs/a 3 + logs/big 6 fragments + 3 heads + fast/y 3
    assert t["moved_down_objects"] - t0s["moved_down_objects"] >= 15, (t, t0s)
    assert t["media"]["cold"]["objects"] >= 15 + 3
    assert sum(n["moved_down_objects"] for n in after["nodes"]) == t["moved_down_objects"]
    assert t["media"]["cold"]["bytes"] == sum(n["media"]["cold"]["bytes"] for n in after["nodes"])
    assert len(t["media"]["hot"]["age_histogram"]) == len(t["age_bounds_s"]) == 8
    print(f"    moved after {moved_after:.1f} s; cluster: {t['moved_down_objects']} fragments "
          f"({t['moved_down_bytes']} B) moved down", flush=True)

    # the admin endpoint is the admin user's only
    assert admin_tiers(KEY2, SECRET2)[0] == 403
    st, _, _ = signed("GET", "/_strata/tiers", sign=False)
    assert st == 403, st
    # strata-admin tiers --gateway: the same sums as a table, and as JSON
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=C.creds)
    out = subprocess.run([os.path.join(TOP, "tools", "strata-admin"), "tiers", "--gateway", C.url],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "6 of 6 nodes" in out.stdout and "moved hot->cold" in out.stdout, out.stdout
    out = subprocess.run([os.path.join(TOP, "tools", "strata-admin"), "tiers", "--gateway", C.url,
                          "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["nodes_answered"] == 6, out
    out = subprocess.run([os.path.join(TOP, "tools", "strata-admin"), "tiers", "--gateway", C.url,
                          "--profile", "alt"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "403" in out.stderr, out


def moved(t0):
    """Fragments moved (down, up) across the cluster since admin total t0."""
    st, now = admin_tiers()
    assert st == 200 and now["nodes_answered"] == 6, now
    return (now["total"]["moved_down_objects"] - t0["moved_down_objects"],
            now["total"]["moved_up_objects"] - t0["moved_up_objects"])


def gw_log_has(text, path=None):
    with open(path or C.gw.logpath) as f:
        return text in f.read()


def page_recorded(bucket, key):
    """The gateway logged the pass of bucket recording key as done."""
    import re
    with open(C.gw.logpath) as f:
        return re.search(rf"bucket {bucket}: tier pass [0-9]+ at key {key} ", f.read()) is not None


def test_existing_objects():
    """A Transition rule added after the PUTs reaches the stored objects (a
    policy pass sets their fragments' class with SET_TIER, the nodes' movers
    act on it); re-pinning the bucket hot brings them back."""
    b = "existing"
    S3.create_bucket(Bucket=b)
    data = {"logs/a": body_of(5000, "ea"), "logs/big": body_of(2 * gt.MiB + 77, "eb"),
            "other/c": body_of(5000, "ec")}
    for k, body in data.items():
        S3.put_object(Bucket=b, Key=k, Body=body)
    # multipart: 5 MiB (2 segments) + 1000 B (1 segment), parts in the manifest
    up = S3.create_multipart_upload(Bucket=b, Key="logs/mp")["UploadId"]
    p1, p2 = body_of(5 * gt.MiB, "emp1"), body_of(1000, "emp2")
    e1 = S3.upload_part(Bucket=b, Key="logs/mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = S3.upload_part(Bucket=b, Key="logs/mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    S3.complete_multipart_upload(Bucket=b, Key="logs/mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    data["logs/mp"] = p1 + p2
    time.sleep(3)       # three scans: nothing moves on its own (cold_after 1 h)
    assert where(data["logs/a"]) == (3, 0) and where(data["other/c"]) == (3, 0)
    st, t0 = admin_tiers()
    t0 = t0["total"]
    start = time.time()
    S3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        dict(LC_RULE, Filter={"Prefix": "logs/"}, Transitions=[{"Days": 1, "StorageClass": "STANDARD_IA"}])]})
    # logs/a: 3 replicas; logs/big: 3 head replicas + one segment's 6
    # fragments; logs/mp: 3 head replicas + 3 segments' 18 fragments
    frags = 3 + 9 + 21
    wait_for(lambda: where(data["logs/a"])[1] == 3 and where(data["logs/big"][:256])[1] >= 1 and
             where(p1[:256])[1] >= 1 and where(p2[:256])[1] >= 1 and moved(t0)[0] >= frags,
             "existing objects moved by the new rule")
    took = time.time() - start
    time.sleep(2)
    assert where(data["other/c"]) == (3, 0)
    down, up = moved(t0)
    assert down == frags and up == 0, (down, up)
    for k, body in data.items():
        assert S3.get_object(Bucket=b, Key=k)["Body"].read() == body
    print(f"    rule reached 3 stored objects, their {frags} fragments cold after {took:.1f} s",
          flush=True)
    assert S3.head_object(Bucket=b, Key="logs/a")["StorageClass"] == "STANDARD_IA"
    assert S3.head_object(Bucket=b, Key="logs/mp")["StorageClass"] == "STANDARD_IA"
    assert "StorageClass" not in S3.head_object(Bucket=b, Key="other/c")
    # Pinned hot: back up, all of them (other/c never left).
    assert signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-pin": "hot"})[0] == 200
    wait_for(lambda: moved(t0)[1] >= frags, "re-pinned hot: back up")
    time.sleep(2)
    assert moved(t0) == (frags, frags), moved(t0)
    for k, body in data.items():
        g = S3.get_object(Bucket=b, Key=k)
        assert g["Body"].read() == body and "StorageClass" not in g, k   # hot again
    wait_for(lambda: gw_log_has("bucket existing: tier pass done"), "pass logged")


def test_policy_pass():
    """A policy pass over a bucket on the second storage policy (ec12, EC
    1+2: fragments 256..258) sets the class of each of its fragments: a
    Transition rule takes an object's 3 head replicas and its 3 segments'
    3 copies each cold, and they read back."""
    b = "tier-ec12"
    st, _, _ = signed("PUT", f"/{b}", {"x-strata-storage-policy": "ec12"})
    assert st == 200
    body = body_of(2 * gt.MiB + 77, "pol12")
    S3.put_object(Bucket=b, Key="logs/big", Body=body)
    time.sleep(2)
    assert where(body[:256]) == (3, 0)      # k = 1: the copies hold the bytes
    st, t0 = admin_tiers()
    t0 = t0["total"]
    S3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        dict(LC_RULE, Transitions=[{"Days": 1, "StorageClass": "STANDARD_IA"}])]})
    frags = 3 + 3 * 3
    wait_for(lambda: where(body[:256])[1] == 3 and moved(t0)[0] >= frags,
             "the ec12 object's fragments moved by the rule")
    assert moved(t0)[0] == frags, moved(t0)
    assert S3.get_object(Bucket=b, Key="logs/big")["Body"].read() == body
    wait_for(lambda: gw_log_has(f"bucket {b}: tier pass done"), "pass logged")


def listed(b, **kw):
    """({key: StorageClass} of bucket b in ListObjectsV2, the same in
    ListObjects v1)."""
    return tuple({o["Key"]: o["StorageClass"] for o in lst(Bucket=b, **kw).get("Contents", [])}
                 for lst in (S3.list_objects_v2, S3.list_objects))


def listed_classes(b, **kw):
    """{key: StorageClass} of bucket b, v1 and v2 listings agreeing."""
    v2, v1 = listed(b, **kw)
    assert v1 == v2, (v1, v2)
    return v2


def test_list_class():
    """ListObjects v1/v2 show the class HEAD shows, by age since creation
    (as S3 transitions): objects PUT before two Transition rules (6 "days"
    to STANDARD_IA, 12 to GLACIER_IR) list STANDARD, then STANDARD_IA,
    then GLACIER_IR; one read all along stays hot yet shows the
    rule's class like the rest; pinned cold, the keys no rule reached list
    STANDARD_IA; re-pinned hot, all list STANDARD. A class given at PUT
    is shown whatever the policy."""
    b = "listcls"
    S3.create_bucket(Bucket=b)
    data = {"logs/a": body_of(3000, "lca"), "logs/b": body_of(4000, "lcb"),
            "other/c": body_of(3500, "lcc")}
    for k, body in data.items():
        S3.put_object(Bucket=b, Key=k, Body=body)
    S3.put_object(Bucket=b, Key="logs/ir", Body=b"explicit", StorageClass="ONEZONE_IA")
    mtime = {o["Key"]: o["LastModified"].timestamp()
             for o in S3.list_objects_v2(Bucket=b)["Contents"]}
    S3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        dict(LC_RULE, ID="ia", Transitions=[{"Days": 6, "StorageClass": "STANDARD_IA"}]),
        dict(LC_RULE, ID="ir", Transitions=[{"Days": 12, "StorageClass": "GLACIER_IR"}])]})

    def expect(k, lo, hi):
        """The class due at an age in [lo, hi] (the request's start and
        end), or None when a boundary is within 0.3 s of that."""
        if k == "logs/ir":
            return "ONEZONE_IA"
        if not k.startswith("logs/"):
            return "STANDARD"
        for days, cls in ((12, "GLACIER_IR"), (6, "STANDARD_IA"), (0, "STANDARD")):
            if days and lo - 0.3 < days < hi + 0.3:
                return None
            if lo >= days:
                return cls
    seen = {}
    deadline = time.time() + 60
    while min(time.time() - t for t in mtime.values()) < 15:
        assert time.time() < deadline, seen
        t0 = time.time()
        lists = listed(b)
        t1 = time.time()
        for got in lists:
            for k, cls in got.items():
                want = expect(k, t0 - mtime[k], t1 - mtime[k])
                assert want in (None, cls), (k, t0 - mtime[k], cls)
                seen.setdefault(k, set()).add(cls)
        # HEAD says the same (S3: StorageClass absent for STANDARD)
        t0 = time.time()
        h = S3.head_object(Bucket=b, Key="logs/a").get("StorageClass", "STANDARD")
        want = expect("logs/a", t0 - mtime["logs/a"], time.time() - mtime["logs/a"])
        assert want in (None, h), (h, want)
        # read all along: it stays hot (the nodes' cold_after counts from the
        # last access; HEAD and GET touch every replica), its class follows
        # its age all the same
        assert S3.get_object(Bucket=b, Key="logs/a")["Body"].read() == data["logs/a"]
        time.sleep(0.4)
    assert seen["logs/a"] == seen["logs/b"] == {"STANDARD", "STANDARD_IA", "GLACIER_IR"}, seen
    assert seen["other/c"] == {"STANDARD"} and seen["logs/ir"] == {"ONEZONE_IA"}, seen
    # (a moved record's bytes stay in the hot volume until compaction:
    # "on cold" is what where() can tell)
    assert where(data["logs/a"]) == (3, 0), where(data["logs/a"])
    wait_for(lambda: where(data["logs/b"])[1] == 3, "logs/b (unread) cold")
    assert listed_classes(b, Prefix="logs/", MaxKeys=2) == {"logs/a": "GLACIER_IR",
                                                            "logs/b": "GLACIER_IR"}

    # Pinned cold: what no rule moved lists STANDARD_IA; re-pinned hot,
    # STANDARD. The class given at PUT stays.
    want = {"logs/a": "GLACIER_IR", "logs/b": "GLACIER_IR", "other/c": "STANDARD_IA",
            "logs/ir": "ONEZONE_IA"}
    assert signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-pin": "cold"})[0] == 200
    wait_for(lambda: listed(b) == (want, want), "pinned cold: listed cold", timeout=10)
    assert S3.head_object(Bucket=b, Key="other/c")["StorageClass"] == "STANDARD_IA"
    wait_for(lambda: where(data["other/c"])[1] == 3, "pinned cold: other/c cold")
    want = dict.fromkeys(data, "STANDARD") | {"logs/ir": "ONEZONE_IA"}
    assert signed("PUT", f"/{b}?strata-tier", {"x-strata-tier-pin": "hot"})[0] == 200
    wait_for(lambda: listed(b) == (want, want), "pinned hot: listed STANDARD", timeout=10)
    for k in data:
        assert "StorageClass" not in S3.head_object(Bucket=b, Key=k), k


def test_tags_keep_pass():
    """Bucket tags change no object's tier: tagging a bucket while its
    lifecycle change's pass runs starts no pass and does not end that one
    (a tags-only record keeps the tier settings' generation)."""
    import re
    b = "tagpass"
    n = 260             # more than 5 s at the test's pass rate
    bodies, t0 = fill_then_rule(b, n, "STANDARD_IA")
    wait_for(lambda: gw_log_has(f"bucket {b}: tier pass "), "the pass started", timeout=30)
    tags = [{"Key": "team", "Value": "archive"}]
    S3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})
    S3.delete_bucket_tagging(Bucket=b)
    S3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tags})
    assert not gw_log_has(f"bucket {b}: tier pass done"), "the pass was over before the tags"
    wait_for(lambda: gw_log_has(f"bucket {b}: tier pass done"), "the pass finished", timeout=120)
    with open(C.gw.logpath) as f:
        log = f.read()
    assert len(re.findall(rf"bucket {b}: tier pass [0-9]+ started", log)) == 1, log
    assert not re.search(rf"bucket {b}: tier pass [0-9]+ superseded", log), log
    wait_for(lambda: moved(t0)[0] >= 3 * n, "every object's replicas cold", timeout=60)
    assert S3.get_bucket_tagging(Bucket=b)["TagSet"] == tags
    assert S3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]["Status"] == "Enabled"
    assert where(bodies["k0000"])[1] == 3


def fill_then_rule(b, n, cls):
    """Bucket b with n small objects k0000...; then a Transition rule of 1
    "day" to cls on all of it. Their bodies, and the admin totals before."""
    S3.create_bucket(Bucket=b)
    bodies = {}
    for i in range(n):
        k = f"k{i:04d}"
        bodies[k] = body_of(500 + i, f"{b}{i}")
        S3.put_object(Bucket=b, Key=k, Body=bodies[k])
    st, t0 = admin_tiers()
    S3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        dict(LC_RULE, Filter={"Prefix": ""}, Transitions=[{"Days": 1, "StorageClass": cls}])]})
    return bodies, t0["total"]


def test_pass_killed():
    """A gateway killed (SIGKILL) during a pass finishes it after a restart,
    from the last page it recorded; every object ends up cold."""
    global S3
    b = "killpass"
    n = 260             # pages of 200: the kill falls after the first
    bodies, t0 = fill_then_rule(b, n, "GLACIER_IR")
    start = time.time()     # (just after the rule)
    # 50 objects/s: the first page (200) is recorded after ~4 s
    wait_for(lambda: page_recorded(b, "k0199"), "the first page recorded", timeout=60)
    time.sleep(0.3)
    killed = moved(t0)[0]
    C.gw.proc.kill()
    C.gw.proc.wait()
    assert not gw_log_has("bucket killpass: tier pass done"), "the pass was over before the kill"
    os.unlink(C.gw.port_file)
    C.gw.start()    # a new port
    C.url = f"http://127.0.0.1:{C.gw.port}"
    S3 = C.client()
    wait_for(lambda: gw_log_has("bucket killpass: tier pass done"), "the pass finished after the restart",
             timeout=120)
    assert gw_log_has("tier pass") and gw_log_has("resumed after key k0"), C.gw.log_text()
    wait_for(lambda: moved(t0)[0] >= 3 * n, "every object's replicas cold", timeout=60)
    took = time.time() - start
    for k in ("k0000", f"k{n - 1:04d}", "k0201"):
        assert where(bodies[k]) [1] == 3, k
        assert S3.get_object(Bucket=b, Key=k)["Body"].read() == bodies[k]
    print(f"    killed at {killed} of {3 * n} fragments moved; all {n} objects cold "
          f"{took:.1f} s after the rule (pass rate {PASS_RATE}/s)", flush=True)


def test_two_gateways():
    """Two gateways: the one running a pass is killed and stays down; the
    other takes the pass over once its heartbeat is stale, from its last
    recorded key, and finishes it."""
    global S3
    b = "twogw"
    n = 260
    pf2 = os.path.join(gt.TMP, "gateway2.port")
    args = list(C.gw.args)
    args[args.index("--port-file") + 1] = pf2
    gw2 = gt.Daemon("gateway2", args, port_file=pf2)
    try:
        bodies, t0 = fill_then_rule(b, n, "STANDARD_IA")
        wait_for(lambda: page_recorded(b, "k0199"), "the first page recorded", timeout=60)
        C.gw.proc.kill()
        C.gw.proc.wait()
        assert not gw_log_has("bucket twogw: tier pass done")
        wait_for(lambda: gw_log_has("bucket twogw: tier pass done", gw2.logpath),
                 "gateway 2 finished it", timeout=120)
        assert gw_log_has("bucket twogw: tier pass", gw2.logpath) and \
            gw_log_has("resumed after key k0199", gw2.logpath), gw2.log_text()
        os.unlink(C.gw.port_file)
        C.gw.start()
        C.url = f"http://127.0.0.1:{C.gw.port}"
        S3 = C.client()
        wait_for(lambda: moved(t0)[0] >= 3 * n, "every object's replicas cold", timeout=60)
        for k in ("k0000", "k0200", f"k{n - 1:04d}"):
            assert where(bodies[k])[1] == 3, k
    finally:
        assert gw2.stop() == 0, gw2.log_text()
        if C.gw.proc.poll() is not None:     # failed while gateway 1 was down
            if os.path.exists(C.gw.port_file):
                os.unlink(C.gw.port_file)
            C.gw.start()
            C.url = f"http://127.0.0.1:{C.gw.port}"
            S3 = C.client()


def restart_gateway(rate):
    """The gateway again with --tier-pass-rate rate (SIGTERM, a new port)."""
    global S3
    C.gw.stop()
    i = C.gw.args.index("--tier-pass-rate")
    C.gw.args[i + 1] = str(rate)
    os.unlink(C.gw.port_file)
    C.gw.start()
    C.url = f"http://127.0.0.1:{C.gw.port}"
    S3 = C.client()


def test_pass_rate():
    """STRATA_LONG=1 (docs/tiering.md numbers): N objects stored, then a rule;
    the pass's rate (uncapped, or STRATA_TIER_RATE), and the time until the
    nodes moved them all."""
    import concurrent.futures
    import re
    if not os.environ.get("STRATA_LONG"):
        print("    SKIPPED (STRATA_LONG=1 runs it)", flush=True)
        return
    n = int(os.environ.get("STRATA_TIER_N", "2000"))
    b = "rate"
    restart_gateway(int(os.environ.get("STRATA_TIER_RATE", "1000000")))
    S3.create_bucket(Bucket=b)
    clients = [C.client() for _ in range(16)]
    size = int(os.environ.get("STRATA_TIER_SIZE", "1000"))
    frags = 3 if size <= 64 * 1024 else 3 + 6 * -(-size // (4 * gt.MiB))  # inline, or EC 4+2
    body = body_of(size, "rate")
    t = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: clients[i % 16].put_object(Bucket=b, Key=f"o{i:07d}", Body=body),
                    range(n)))
    put_s = time.time() - t
    st, t0 = admin_tiers()
    t0 = t0["total"]
    start = time.time()
    S3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        dict(LC_RULE, Filter={"Prefix": ""}, Transitions=[{"Days": 1, "StorageClass": "STANDARD_IA"}])]})
    wait_for(lambda: gw_log_has("bucket rate: tier pass done"), "pass done", timeout=3600)
    pass_s = time.time() - start
    wait_for(lambda: moved(t0)[0] >= frags * n, "all moved", timeout=3600)
    all_s = time.time() - start
    with open(C.gw.logpath) as f:
        line = [x for x in f if "bucket rate: tier pass done" in x][-1]
    rate = re.search(r"\(([0-9]+) objects/s\)", line).group(1)
    print(f"    {n} objects of {size} B loaded in {put_s:.1f} s; pass {pass_s:.1f} s ({rate} "
          f"objects/s, {frags * n} fragments); all cold {all_s:.1f} s after the rule; "
          f"load {os.getloadavg()}", flush=True)
    restart_gateway(PASS_RATE)


TESTS = [test_storage_class, test_lifecycle_api, test_transition_and_pins, test_list_class,
         test_existing_objects, test_pass_killed, test_tags_keep_pass, test_two_gateways,
         test_pass_rate, test_policy_pass]


def main():
    global C, S3
    C = TierCluster()
    S3 = C.client()
    return gt.cluster.run(C, TESTS, gt.ONLY)


if __name__ == "__main__":
    sys.exit(main())
