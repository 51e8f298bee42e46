#!/usr/bin/python3
"""Integration test of strata-gateway's listings: 6 real storage nodes, the
gateway with tiny listing shards (--shard-max 50, so buckets split while the
test writes), and real clients (boto3, the AWS CLI, curl for raw queries).

usage: gateway_list_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]

Shares gateway_test.py's daemons and cluster setup. Prints one line per test
and "N passed, N failed"; exits 77 when boto3 or the AWS CLI is missing.
"""
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (skips with 77 itself when clients are missing)

SHARD_MAX = 50
C = None
S3 = None
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def keys_of(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


def prefixes_of(resp):
    return [p["Prefix"] for p in resp.get("CommonPrefixes", [])]


def list_all_v2(bucket, **kw):
    keys, prefixes = [], []
    for page in S3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += keys_of(page)
        prefixes += prefixes_of(page)
    return keys, prefixes


def list_all_v1(bucket, **kw):
    keys, prefixes = [], []
    for page in S3.get_paginator("list_objects").paginate(Bucket=bucket, **kw):
        keys += keys_of(page)
        prefixes += prefixes_of(page)
    return keys, prefixes


def raw_get(url):
    """A presigned URL through urllib: status and body, errors included."""
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def put_many(bucket, keys, body=b"x"):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: S3.put_object(Bucket=bucket, Key=k, Body=body), keys))


# -------------------------------------------------------------------- tests

def test_list_basic():
    b = "lbasic"
    S3.create_bucket(Bucket=b)
    assert S3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    keys = ["a", "a/b", "a/c/d", "a/c/e", "b+plus", "c d space", "é-unicode",
            "photos/2024/1.jpg", "photos/2024/2.jpg", "photos/2025/1.jpg", "z"]
    etags = {}
    for i, k in enumerate(keys):
        # XXX i + 1: a 0-byte PUT as a connection's first request stalls the
        # next request 60 s (a bug on main, outside listings).
        etags[k] = S3.put_object(Bucket=b, Key=k, Body=b"y" * (i + 1))["ETag"]
    # v2, everything: sorted by UTF-8 bytes, sizes and ETags from the PUTs.
    r = S3.list_objects_v2(Bucket=b)
    want = sorted(keys, key=lambda k: k.encode())
    assert keys_of(r) == want, keys_of(r)
    assert r["KeyCount"] == len(keys) and not r["IsTruncated"]
    for o in r["Contents"]:
        assert o["Size"] == keys.index(o["Key"]) + 1, o
        assert o["ETag"] == etags[o["Key"]], o
        assert o["StorageClass"] == "STANDARD"
        assert abs(o["LastModified"].timestamp() - time.time()) < 120
        assert "Owner" not in o
    # Prefix and delimiter.
    r = S3.list_objects_v2(Bucket=b, Delimiter="/")
    assert keys_of(r) == ["a", "b+plus", "c d space", "z", "é-unicode"], keys_of(r)
    assert prefixes_of(r) == ["a/", "photos/"], prefixes_of(r)
    assert r["KeyCount"] == 7
    r = S3.list_objects_v2(Bucket=b, Prefix="photos/", Delimiter="/")
    assert keys_of(r) == [] and prefixes_of(r) == ["photos/2024/", "photos/2025/"]
    r = S3.list_objects_v2(Bucket=b, Prefix="a/c/")
    assert keys_of(r) == ["a/c/d", "a/c/e"]
    assert S3.list_objects_v2(Bucket=b, Prefix="nothing")["KeyCount"] == 0
    # Pagination: max-keys, continuation tokens, start-after.
    r = S3.list_objects_v2(Bucket=b, MaxKeys=3)
    assert keys_of(r) == want[:3] and r["IsTruncated"] and r["KeyCount"] == 3
    r2 = S3.list_objects_v2(Bucket=b, MaxKeys=3, ContinuationToken=r["NextContinuationToken"])
    assert keys_of(r2) == want[3:6] and r2["ContinuationToken"] == r["NextContinuationToken"]
    r = S3.list_objects_v2(Bucket=b, StartAfter="photos/2024/1.jpg")
    assert keys_of(r) == want[want.index("photos/2024/1.jpg") + 1:]
    assert r["StartAfter"] == "photos/2024/1.jpg"
    r = S3.list_objects_v2(Bucket=b, MaxKeys=len(keys))
    assert not r["IsTruncated"], "exactly max-keys left: not truncated"
    for mk in (1, 2, 5):
        got, pfx = list_all_v2(b, PaginationConfig={"PageSize": mk})
        assert got == want, (mk, got)
        got, pfx = list_all_v2(b, Delimiter="/", PaginationConfig={"PageSize": mk})
        assert got == ["a", "b+plus", "c d space", "z", "é-unicode"] and \
            pfx == ["a/", "photos/"], (mk, got, pfx)
    r = S3.list_objects_v2(Bucket=b, MaxKeys=0)
    assert r["KeyCount"] == 0 and not r["IsTruncated"] and r["MaxKeys"] == 0
    # fetch-owner.
    r = S3.list_objects_v2(Bucket=b, FetchOwner=True, MaxKeys=1)
    assert r["Contents"][0]["Owner"]["ID"] == "default", r["Contents"][0]
    # v1: marker, NextMarker only with a delimiter, Owner always.
    r = S3.list_objects(Bucket=b, MaxKeys=4)
    assert keys_of(r) == want[:4] and r["IsTruncated"] and "NextMarker" not in r
    assert r["Contents"][0]["Owner"]["ID"] == "default"
    r = S3.list_objects(Bucket=b, Marker=want[3])
    assert keys_of(r) == want[4:] and r["Marker"] == want[3]
    r = S3.list_objects(Bucket=b, Delimiter="/", MaxKeys=2)
    assert keys_of(r) == ["a"] and prefixes_of(r) == ["a/"] and r["NextMarker"] == "a/"
    got, pfx = list_all_v1(b, Delimiter="/", PaginationConfig={"PageSize": 2})
    assert pfx == ["a/", "photos/"] and len(got) == 5, (got, pfx)
    got, _ = list_all_v1(b, PaginationConfig={"PageSize": 3})
    assert got == want


def test_list_encoding_and_errors():
    b = "lbasic"
    # encoding-type=url: keys %-encoded on the wire (boto3 decodes them).
    url = S3.generate_presigned_url("list_objects_v2", Params={
        "Bucket": b, "Prefix": "c", "EncodingType": "url"})
    st, body = raw_get(url)
    assert st == 200, body
    assert b"<Key>c%20d%20space</Key>" in body and b"<EncodingType>url</EncodingType>" in body
    # Wrong arguments: 400 InvalidArgument.
    for params in ({"EncodingType": "bogus"}, {"ContinuationToken": "zz"},
                   {"MaxKeys": -1}):
        url = S3.generate_presigned_url("list_objects_v2", Params={"Bucket": b, **params})
        st, body = raw_get(url)
        assert st == 400 and b"InvalidArgument" in body, (params, st, body)
    # max-keys above 1000 is capped.
    assert S3.list_objects_v2(Bucket=b, MaxKeys=5000)["MaxKeys"] == 1000
    assert gt.err_code(lambda: S3.list_objects_v2(Bucket="nosuchbucket")) == \
        ("NoSuchBucket", 404)
    alt = C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    assert gt.err_code(lambda: alt.list_objects_v2(Bucket=b))[1] == 403


def test_overwrite_and_delete():
    b = "loverwrite"
    S3.create_bucket(Bucket=b)
    S3.put_object(Bucket=b, Key="k", Body=b"1")
    e2 = S3.put_object(Bucket=b, Key="k", Body=b"22")["ETag"]
    S3.put_object(Bucket=b, Key="gone", Body=b"x")
    S3.put_object(Bucket=b, Key="big", Body=gt.data_of(300 << 10))   # EC layout
    S3.delete_object(Bucket=b, Key="gone")
    r = S3.list_objects_v2(Bucket=b)
    assert keys_of(r) == ["big", "k"], keys_of(r)
    k = [o for o in r["Contents"] if o["Key"] == "k"][0]
    assert k["Size"] == 2 and k["ETag"] == e2
    assert [o["Size"] for o in r["Contents"] if o["Key"] == "big"] == [300 << 10]
    # A deleted key comes back when written again; deleting twice is fine.
    S3.delete_object(Bucket=b, Key="gone")
    S3.put_object(Bucket=b, Key="gone", Body=b"back")
    assert keys_of(S3.list_objects_v2(Bucket=b)) == ["big", "gone", "k"]
    # Many deletes: the node skips tombstones, pages stay right.
    put_many(b, [f"t/{i:03d}" for i in range(40)])
    for i in range(0, 40, 2):
        S3.delete_object(Bucket=b, Key=f"t/{i:03d}")
    got, _ = list_all_v2(b, Prefix="t/", PaginationConfig={"PageSize": 3})
    assert got == [f"t/{i:03d}" for i in range(1, 40, 2)], got


def test_list_buckets():
    r = S3.list_buckets()
    names = [x["Name"] for x in r["Buckets"]]
    assert names == sorted(names) and "lbasic" in names and "loverwrite" in names, names
    assert r["Owner"]["ID"] == "default" and r["Owner"]["DisplayName"] == "default"
    for x in r["Buckets"]:
        assert abs(x["CreationDate"].timestamp() - time.time()) < 3600, x
    alt = C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    alt.create_bucket(Bucket="altbucket")
    assert [x["Name"] for x in alt.list_buckets()["Buckets"]] == ["altbucket"]
    assert "altbucket" not in [x["Name"] for x in S3.list_buckets()["Buckets"]]
    alt.delete_bucket(Bucket="altbucket")
    assert alt.list_buckets()["Buckets"] == []


def test_delete_bucket_not_empty():
    b = "lnotempty"
    S3.create_bucket(Bucket=b)
    S3.put_object(Bucket=b, Key="one", Body=b"1")
    assert gt.err_code(lambda: S3.delete_bucket(Bucket=b)) == ("BucketNotEmpty", 409)
    S3.delete_object(Bucket=b, Key="one")
    S3.delete_bucket(Bucket=b)
    assert b not in [x["Name"] for x in S3.list_buckets()["Buckets"]]
    assert gt.err_code(lambda: S3.list_objects_v2(Bucket=b)) == ("NoSuchBucket", 404)
    # Created again: a new, empty listing.
    S3.create_bucket(Bucket=b)
    assert S3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    S3.delete_bucket(Bucket=b)


def test_splits():
    """Writes through several shard splits (shard-max 50): nothing lost,
    listings walk the shards in order, deletes during splits stick."""
    b = "lsplit"
    S3.create_bucket(Bucket=b)
    keys = [f"{d}/{i:04d}" for d in ("a", "b", "c") for i in range(120)]
    half = len(keys) // 2
    put_many(b, keys[:half])
    time.sleep(1)
    put_many(b, keys[half:])
    # Deletes while splits may still run.
    gone = set(keys[::7])
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: S3.delete_object(Bucket=b, Key=k), sorted(gone)))
    want = sorted(set(keys) - gone)
    deadline = time.time() + 30
    while time.time() < deadline:
        splits = C.gw.log_text().count("shard split done")
        if splits >= 3:
            break
        time.sleep(0.5)
    log = open(C.gw.logpath).read()
    assert log.count("shard split done") >= 3, "expected several splits:\n" + log[-3000:]
    got, _ = list_all_v2(b)
    assert got == want, (len(got), len(want), sorted(set(want) - set(got))[:5])
    for ps in (7, 50, 1000):
        got, _ = list_all_v2(b, PaginationConfig={"PageSize": ps})
        assert got == want, ps
    got, pfx = list_all_v2(b, Delimiter="/", PaginationConfig={"PageSize": 1})
    assert got == [] and pfx == ["a/", "b/", "c/"], pfx
    got, _ = list_all_v1(b, Prefix="b/", PaginationConfig={"PageSize": 13})
    assert got == [k for k in want if k.startswith("b/")]
    r = S3.list_objects_v2(Bucket=b, StartAfter="b/0100", MaxKeys=5)
    assert keys_of(r) == [k for k in want if k > "b/0100"][:5]
    # Writes after the splits land in the new shards.
    S3.put_object(Bucket=b, Key="b/0050x", Body=b"new")
    assert "b/0050x" in list_all_v2(b, Prefix="b/00")[0]
    assert gt.err_code(lambda: S3.delete_bucket(Bucket=b)) == ("BucketNotEmpty", 409)


def test_delete_objects():
    b = "lmulti"
    S3.create_bucket(Bucket=b)
    keys = [f"m/{i:02d}" for i in range(30)]
    put_many(b, keys)
    objs = [{"Key": k} for k in keys[:10]] + [{"Key": "never-existed"}]
    r = S3.delete_objects(Bucket=b, Delete={"Objects": objs})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys[:10] + ["never-existed"]), r
    assert not r.get("Errors"), r
    assert keys_of(S3.list_objects_v2(Bucket=b)) == keys[10:]
    # Quiet: only errors come back; a version id is refused per key.
    r = S3.delete_objects(Bucket=b, Delete={"Quiet": True, "Objects": [
        {"Key": keys[10]}, {"Key": keys[11], "VersionId": "v123"}]})
    assert "Deleted" not in r, r
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [(keys[11], "NotImplemented")], r
    assert keys_of(S3.list_objects_v2(Bucket=b)) == keys[11:]
    # 1000 keys (the limit) in one request; 1001 is MalformedXML.
    many = [{"Key": k} for k in keys[11:]] + [{"Key": f"x/{i:04d}"} for i in range(1000 - 19)]
    r = S3.delete_objects(Bucket=b, Delete={"Objects": many})
    assert len(r["Deleted"]) == 1000 and not r.get("Errors")
    assert S3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    assert gt.err_code(lambda: S3.delete_objects(Bucket=b, Delete={
        "Objects": [{"Key": f"k{i}"} for i in range(1001)]})) == ("MalformedXML", 400)
    # A body that does not match its checksum is refused before any delete.
    S3.put_object(Bucket=b, Key="keep", Body=b"k")
    st, body = raw_post_delete(b, b"<Delete><Object><Key>keep</Key></Object></Delete>",
                               {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    assert st == 400 and b"BadDigest" in body, (st, body)
    assert keys_of(S3.list_objects_v2(Bucket=b)) == ["keep"]
    # Another user's bucket: AccessDenied.
    alt = C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    assert gt.err_code(lambda: alt.delete_objects(Bucket=b, Delete={
        "Objects": [{"Key": "keep"}]}))[1] == 403
    S3.delete_object(Bucket=b, Key="keep")
    S3.delete_bucket(Bucket=b)


def raw_post_delete(bucket, body, headers):
    """POST ?delete signed by botocore with the given (possibly wrong) headers."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    import hashlib
    url = f"{C.url}/{bucket}?delete"
    h = dict(headers)
    h["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method="POST", url=url, data=body, headers=h)
    SigV4Auth(Credentials("STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"),
              "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", C.gw.port, timeout=30)
    conn.request("POST", f"/{bucket}?delete", body=body, headers=dict(req.headers))
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out


def test_awscli():
    b = "lbasic"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="STRATATESTKEY0001",
               AWS_SECRET_ACCESS_KEY="secretsecretsecretsecretsecret0001",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def aws(*args):
        t0 = time.time()
        out = subprocess.run(["aws", "--endpoint-url", C.url, *args], env=env, check=True,
                              capture_output=True, text=True).stdout
        print(f"     aws {' '.join(args)}: {time.time() - t0:.1f} s", flush=True)
        return out
    out = aws("s3", "ls")
    assert re.search(r"\blbasic\n", out), out
    out = aws("s3", "ls", f"s3://{b}/")
    assert "PRE a/" in out and "PRE photos/" in out and "c d space" in out, out
    out = aws("s3", "ls", "--recursive", f"s3://{b}/photos/")
    assert out.count("photos/") == 3, out
    out = aws("s3api", "list-objects-v2", "--bucket", b, "--prefix", "a/", "--delimiter", "/")
    assert '"a/c/"' in out and '"a/b"' in out, out
    # "s3 rm --recursive" lists, then DeleteObjects in batches.
    aws("s3", "rm", "--recursive", f"s3://{b}/")
    assert S3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    aws("s3", "rb", f"s3://{b}")
    assert b not in aws("s3", "ls")


def test_degraded_listing():
    """A stopped node: listings fall back to another replica, updates need 2 of 3."""
    b = "ldegraded"
    S3.create_bucket(Bucket=b)
    put_many(b, [f"k{i}" for i in range(10)])
    victim = C.nodes[0]
    victim.signal(signal.SIGSTOP)
    try:
        t0 = time.time()
        assert keys_of(S3.list_objects_v2(Bucket=b)) == [f"k{i}" for i in range(10)]
        assert time.time() - t0 < 5
    finally:
        victim.signal(signal.SIGCONT)
    victim.stop()
    try:
        S3.put_object(Bucket=b, Key="k99", Body=b"while down")
        assert "k99" in keys_of(S3.list_objects_v2(Bucket=b))
        assert "ldegraded" in [x["Name"] for x in S3.list_buckets()["Buckets"]]
    finally:
        victim.start()


TESTS = [test_list_basic, test_list_encoding_and_errors, test_overwrite_and_delete,
         test_list_buckets, test_delete_bucket_not_empty, test_delete_objects, test_splits,
         test_awscli,
         test_degraded_listing]


def main():
    global C, S3
    C = gt.Cluster(["--shard-max", str(SHARD_MAX), "--split-wait-ms", "300"])
    S3 = C.client()
    return gt.cluster.run(C, TESTS, gt.ONLY)


if __name__ == "__main__":
    sys.exit(main())
