#!/usr/bin/python3
"""Integration test of strata-gateway: 6 real storage nodes, the gateway, and
real S3 clients (Debian's boto3 and the AWS CLI, plain curl for presigned
URLs).

usage: gateway_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]

Everything runs on free loopback ports in a temporary folder; daemons are
stopped by PID (SIGTERM, then the exit code is checked). Prints one line per
test and "N passed, N failed"; exits 77 when boto3 or the AWS CLI is missing.
"""
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

try:
    import boto3
    import botocore
    from botocore.config import Config
except ImportError:
    print("SKIP: python3-boto3 is not installed (tools/dev install)")
    sys.exit(77)
if not shutil.which("aws"):
    print("SKIP: awscli is not installed (tools/dev install)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import Daemon, NODES  # noqa: E402,F401  (for the tests built on this one)

RING, STORAGED, GATEWAY = (os.path.abspath(a) for a in sys.argv[1:4])
ONLY = sys.argv[4:]
TMP = cluster.make_tmp("gateway-test.")
MiB = 1 << 20


class Cluster(cluster.Cluster):
    """6 nodes (part power 8), the gateway and its credentials, in TMP."""

    def __init__(self, gw_args=(), node_args=()):
        super().__init__(RING, STORAGED, GATEWAY, TMP, node_args=node_args, gw_args=[
            *gw_args, *(["-v"] if os.environ.get("STRATA_GW_VERBOSE") else [])])


def data_of(size, seed=0):
    """Deterministic, incompressible-enough bytes."""
    out = bytearray()
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048   # 64 KiB
    i = 0
    while len(out) < size:
        out += hashlib.sha256(block[:64] + i.to_bytes(8, "big")).digest() + block[32:32768]
        i += 1
    return bytes(out[:size])


def err_code(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


C = None
S3 = None
BUCKET = "testbucket"


def test_buckets():
    S3.create_bucket(Bucket=BUCKET)
    # us-east-1: the owner's re-create is a 200 (other regions: 409)
    assert err_code(lambda: S3.create_bucket(Bucket=BUCKET)) == (None, 200)
    alt = C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    assert err_code(lambda: alt.create_bucket(Bucket=BUCKET)) == ("BucketAlreadyExists", 409)
    assert err_code(lambda: alt.head_object(Bucket=BUCKET, Key="x"))[1] == 403
    S3.head_bucket(Bucket=BUCKET)
    assert S3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] in (None, "")
    code = err_code(lambda: S3.create_bucket(Bucket="Bad_Name"))
    assert code[1] == 400, code
    assert err_code(lambda: S3.head_bucket(Bucket="nosuchbucket"))[1] == 404
    assert err_code(lambda: S3.get_object(Bucket="nosuchbucket", Key="k")) == ("NoSuchBucket", 404)
    assert err_code(lambda: S3.put_object(Bucket="nosuchbucket", Key="k", Body=b"x"))[0] == "NoSuchBucket"
    assert S3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert BUCKET in [b["Name"] for b in S3.list_buckets()["Buckets"]]
    S3.create_bucket(Bucket="tmpbucket")
    S3.delete_bucket(Bucket="tmpbucket")
    assert err_code(lambda: S3.head_bucket(Bucket="tmpbucket"))[1] == 404


SIZES = [0, 1, 4096, 64 * 1024, 64 * 1024 + 1, 5 * MiB, 100 * MiB]


def test_objects():
    for size in SIZES:
        body = data_of(size, size)
        key = f"obj/{size}"
        r = S3.put_object(Bucket=BUCKET, Key=key, Body=body)
        assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), (size, r["ETag"])
        h = S3.head_object(Bucket=BUCKET, Key=key)
        assert h["ContentLength"] == size, (size, h)
        g = S3.get_object(Bucket=BUCKET, Key=key)
        got = g["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), size
        assert g["ETag"] == r["ETag"]
    for size in SIZES:
        S3.delete_object(Bucket=BUCKET, Key=f"obj/{size}")
        assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key=f"obj/{size}")) == ("NoSuchKey", 404)
    assert err_code(lambda: S3.head_object(Bucket=BUCKET, Key="obj/0"))[1] == 404


def test_ranges():
    for size in (1000, 9 * MiB + 12345):
        body = data_of(size, 7)
        key = f"range/{size}"
        S3.put_object(Bucket=BUCKET, Key=key, Body=body)
        for rng, want in ((f"bytes=0-0", body[:1]), ("bytes=10-99", body[10:100]),
                          ("bytes=-100", body[-100:]), (f"bytes={size - 5}-", body[-5:]),
                          (f"bytes=5-{size * 2}", body[5:]),
                          (f"bytes={4 * MiB - 3}-{4 * MiB + 3}", body[4 * MiB - 3:4 * MiB + 4])):
            if len(want) == 0:
                continue
            g = S3.get_object(Bucket=BUCKET, Key=key, Range=rng)
            assert g["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
            assert g["Body"].read() == want, (size, rng)
            assert g["ContentRange"].endswith(f"/{size}")
        assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={size}-")) == \
            ("InvalidRange", 416)


def test_conditional_and_metadata():
    body = b"hello conditional world"
    r = S3.put_object(Bucket=BUCKET, Key="cond", Body=body, ContentType="text/plain",
                      Metadata={"color": "blue", "shape": "round"},
                      CacheControl="max-age=60", ContentDisposition="inline",
                      ContentEncoding="identity", ContentLanguage="en")
    etag = r["ETag"]
    h = S3.head_object(Bucket=BUCKET, Key="cond")
    assert h["Metadata"] == {"color": "blue", "shape": "round"}, h["Metadata"]
    assert h["ContentType"] == "text/plain"
    assert h["CacheControl"] == "max-age=60"
    assert h["ContentDisposition"] == "inline"
    assert h["ContentLanguage"] == "en"
    lm = h["LastModified"]
    assert S3.get_object(Bucket=BUCKET, Key="cond", IfMatch=etag)["Body"].read() == body
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="cond", IfMatch='"nope"')) == \
        ("PreconditionFailed", 412)
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="cond", IfNoneMatch=etag))[1] == 304
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="cond", IfModifiedSince=lm))[1] == 304
    import datetime
    early = lm - datetime.timedelta(days=1)
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="cond",
                                          IfUnmodifiedSince=early)) == ("PreconditionFailed", 412)
    assert S3.get_object(Bucket=BUCKET, Key="cond", IfModifiedSince=early)["Body"].read() == body
    g = S3.get_object(Bucket=BUCKET, Key="cond", ResponseContentType="application/x-test",
                      ResponseContentDisposition="attachment; filename=x.txt")
    assert g["ContentType"] == "application/x-test"
    assert g["ContentDisposition"] == "attachment; filename=x.txt"


def test_overwrite():
    for sizes in ((10, 200 * 1024), (6 * MiB, 100), (100, 50)):
        for i, size in enumerate(sizes):
            body = data_of(size, 100 + i)
            S3.put_object(Bucket=BUCKET, Key="over", Body=body)
        assert S3.get_object(Bucket=BUCKET, Key="over")["Body"].read() == body


def test_auth():
    S3.put_object(Bucket=BUCKET, Key="cond", Body=b"hello conditional world")
    bad = C.client(secret="wrongwrongwrongwrongwrongwrong0000")
    assert err_code(lambda: bad.get_object(Bucket=BUCKET, Key="cond")) == ("SignatureDoesNotMatch", 403)
    unk = C.client(key="STRATANOSUCHKEY00")
    assert err_code(lambda: unk.get_object(Bucket=BUCKET, Key="cond")) == ("InvalidAccessKeyId", 403)
    anon = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           f"{C.url}/{BUCKET}/cond"], capture_output=True, text=True)
    assert anon.stdout == "403", anon.stdout
    url = S3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "cond"},
                                    ExpiresIn=300)
    out = subprocess.run(["curl", "-sf", url], capture_output=True)
    assert out.returncode == 0 and out.stdout == b"hello conditional world", out
    # The request id travels in a header and in error documents.
    r = subprocess.run(["curl", "-s", "-D", "-", f"{C.url}/{BUCKET}/cond"],
                       capture_output=True, text=True)
    assert "x-amz-request-id" in r.stdout.lower() and "<RequestId>" in r.stdout


def test_virtual_host():
    S3.put_object(Bucket=BUCKET, Key="cond", Body=b"hello conditional world")
    vh = boto3.client("s3", endpoint_url=f"http://localhost:{C.gw.port}",
                      aws_access_key_id="STRATATESTKEY0001",
                      aws_secret_access_key="secretsecretsecretsecretsecret0001",
                      region_name="us-east-1",
                      config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4",
                                    retries={"max_attempts": 1}))
    # bucket.localhost resolves to loopback on Debian (nss-myhostname) or not
    # at all: send the Host header by hand if it does not.
    try:
        socket.getaddrinfo(f"{BUCKET}.localhost", C.gw.port)
    except socket.gaierror:
        print("    (virtual host via an explicit Host header)")
        req = botocore.awsrequest.AWSRequest(
            method="GET", url=f"http://{BUCKET}.localhost:{C.gw.port}/cond",
            headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                     "Host": f"{BUCKET}.localhost:{C.gw.port}"})
        creds = botocore.credentials.Credentials("STRATATESTKEY0001",
                                                 "secretsecretsecretsecretsecret0001")
        botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", C.gw.port)
        conn.request("GET", "/cond", headers=dict(req.headers))
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and body == b"hello conditional world", (resp.status, body)
        return
    assert vh.get_object(Bucket=BUCKET, Key="cond")["Body"].read() == b"hello conditional world"


def test_checksums():
    for alg in ("CRC32", "CRC32C", "SHA256", "SHA1"):
        for size in (3000, 6 * MiB + 1):
            body = data_of(size, 33)
            S3.put_object(Bucket=BUCKET, Key=f"ck/{alg}", Body=body, ChecksumAlgorithm=alg)
            g = S3.get_object(Bucket=BUCKET, Key=f"ck/{alg}", ChecksumMode="ENABLED")
            assert g["Body"].read() == body
    # A wrong Content-MD5 is refused and the object stays as it was.
    S3.put_object(Bucket=BUCKET, Key="md5", Body=b"original")
    import base64
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert err_code(lambda: S3.put_object(Bucket=BUCKET, Key="md5", Body=b"changed!",
                                          ContentMD5=wrong))[0] == "BadDigest"
    assert S3.get_object(Bucket=BUCKET, Key="md5")["Body"].read() == b"original"
    # An aws-chunked upload whose trailer checksum is wrong: refused, invisible.
    big = data_of(5 * MiB, 5)
    wrong = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    code = err_code(lambda: S3.put_object(Bucket=BUCKET, Key="md5", Body=big,
                                          ChecksumSHA256=wrong))
    assert code[0] in ("BadDigest", "InvalidRequest", "XAmzContentSHA256Mismatch"), code
    assert S3.get_object(Bucket=BUCKET, Key="md5")["Body"].read() == b"original"


def test_awscli():
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=C.creds, AWS_CONFIG_FILE="/dev/null",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    src = os.path.join(TMP, "cli-src")
    dst = os.path.join(TMP, "cli-dst")
    body = data_of(20 * MiB + 3, 9)
    with open(src, "wb") as f:
        f.write(body)
    aws = ["aws", "--endpoint-url", C.url]
    # The CLI would use multipart for 20 MiB: raise the threshold.
    subprocess.run(["aws", "configure", "set", "default.s3.multipart_threshold", "1GB"],
                   env=dict(env, AWS_CONFIG_FILE=os.path.join(TMP, "awsconfig")), check=True)
    env["AWS_CONFIG_FILE"] = os.path.join(TMP, "awsconfig")
    subprocess.run(aws + ["s3", "cp", src, f"s3://{BUCKET}/cli"], env=env, check=True,
                   capture_output=True)
    subprocess.run(aws + ["s3", "cp", f"s3://{BUCKET}/cli", dst], env=env, check=True,
                   capture_output=True)
    assert open(dst, "rb").read() == body
    out = subprocess.run(aws + ["s3api", "head-object", "--bucket", BUCKET, "--key", "cli"],
                         env=env, check=True, capture_output=True, text=True)
    assert str(len(body)) in out.stdout
    subprocess.run(aws + ["s3api", "delete-object", "--bucket", BUCKET, "--key", "cli"],
                   env=env, check=True, capture_output=True)


def test_degraded_read():
    body = data_of(13 * MiB + 77, 42)
    S3.put_object(Bucket=BUCKET, Key="degraded", Body=body)
    small = data_of(1000, 43)
    S3.put_object(Bucket=BUCKET, Key="degraded-small", Body=small)
    for how in ("stop", "kill"):
        for victim in range(NODES):
            n = C.nodes[victim]
            if how == "stop":
                n.signal(signal.SIGSTOP)
            else:
                n.signal(signal.SIGKILL)
                n.proc.wait()
            try:
                t = time.time()
                got = S3.get_object(Bucket=BUCKET, Key="degraded")["Body"].read()
                assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), victim
                assert S3.get_object(Bucket=BUCKET, Key="degraded-small")["Body"].read() == small
                assert time.time() - t < 20, "degraded read too slow"
            finally:
                if how == "stop":
                    n.signal(signal.SIGCONT)
                else:
                    n.start()
            print(f"    {how} node{victim + 1}: {time.time() - t:.2f} s", flush=True)
            time.sleep(4.2)     # the gateway's down period (1 s, up to 4x) passes
    got = S3.get_object(Bucket=BUCKET, Key="degraded")["Body"].read()
    assert got == body


def test_big_rss():
    """1 GiB (5 GiB, S3's single-PUT limit, with STRATA_LONG=1) through a
    presigned PUT (UNSIGNED-PAYLOAD) and GET: the gateway's peak RSS stays
    well under 100 MiB."""
    if os.environ.get("STRATA_LONG") == "1":
        size = 5 << 30
    elif os.environ.get("STRATA_GW_BIG", "1") == "1":
        size = 1 << 30
    else:
        size = 256 * MiB
    put = S3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "big"},
                                    ExpiresIn=3600)
    u = urllib.parse.urlsplit(put)
    block = data_of(MiB, 77)
    h = hashlib.md5()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.putrequest("PUT", u.path + "?" + u.query, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for i in range(size // MiB):
        chunk = block[i % 251:] + block[:i % 251]
        h.update(chunk)
        conn.send(chunk)
    resp = conn.getresponse()
    assert resp.status == 200, (resp.status, resp.read())
    assert resp.getheader("ETag") == '"%s"' % h.hexdigest()
    resp.read()
    g = S3.get_object(Bucket=BUCKET, Key="big")["Body"]
    h2 = hashlib.md5()
    n = 0
    while True:
        b = g.read(4 * MiB)
        if not b:
            break
        n += len(b)
        h2.update(b)
    assert n == size and h2.hexdigest() == h.hexdigest()
    hwm = C.gw.status("VmHWM")
    print(f"    gateway VmHWM after {size >> 20} MiB PUT+GET: {hwm >> 10} MiB")
    assert hwm < 100 * 1024 * (3 if "asan" in GATEWAY else 1), hwm
    S3.delete_object(Bucket=BUCKET, Key="big")


TESTS = [test_buckets, test_objects, test_ranges, test_conditional_and_metadata,
         test_overwrite, test_auth, test_virtual_host, test_checksums, test_awscli,
         test_degraded_read, test_big_rss]


def main():
    global C, S3
    C = Cluster()
    S3 = C.client()
    if os.environ.get("STRATA_GW_HOLD"):
        print(f"cluster up: {C.url} creds {C.creds}; Ctrl-C to stop", flush=True)
        try:
            time.sleep(float(os.environ["STRATA_GW_HOLD"]))
        except KeyboardInterrupt:
            pass
        C.stop()
        return 0

    def bucket():
        if "test_buckets" not in [t.__name__ for t in TESTS if not ONLY or t.__name__ in ONLY]:
            S3.create_bucket(Bucket=BUCKET)
    return cluster.run(C, TESTS, ONLY, first=bucket)


if __name__ == "__main__":
    sys.exit(main())
