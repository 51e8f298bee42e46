#!/usr/bin/python3
"""Integration test of multipart uploads and copies in strata-gateway: 6 real
storage nodes, the gateway (and a second one), boto3 and the AWS CLI.

usage: gateway_mpu_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]

Reuses gateway_test.py's cluster (same folder); exits 77 when boto3 or the
AWS CLI is missing.
"""
import base64
import datetime
import hashlib
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (parses argv, skips without boto3)
from cluster import with_headers  # noqa: E402

MiB = gt.MiB
BUCKET = "mpubucket"
S3 = None
C = None


def err_code(fn):
    return gt.err_code(fn)


def etag_of(parts):
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), len(parts))


def upload(key, parts, **create):
    """Creates an upload, sends parts (dict number -> bytes) and completes
    it with every part in order; returns the complete answer."""
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    done = []
    for n in sorted(parts):
        r = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=n, Body=parts[n])
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return S3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up,
                                        MultipartUpload={"Parts": done})


def test_basic():
    """Parts out of order, one replaced, metadata kept, ETag, whole and
    ranged GETs across part boundaries, partNumber."""
    p1, p2, p3 = gt.data_of(5 * MiB, 1), gt.data_of(6 * MiB + 17, 2), gt.data_of(MiB + 3, 3)
    up = S3.create_multipart_upload(Bucket=BUCKET, Key="mp/basic", ContentType="text/x-parts",
                                    Metadata={"color": "green"}, CacheControl="no-cache",
                                    StorageClass="STANDARD_IA")["UploadId"]
    e3 = S3.upload_part(Bucket=BUCKET, Key="mp/basic", UploadId=up, PartNumber=3, Body=p3)["ETag"]
    S3.upload_part(Bucket=BUCKET, Key="mp/basic", UploadId=up, PartNumber=2,
                   Body=gt.data_of(5 * MiB + 1, 99))        # replaced below
    e1 = S3.upload_part(Bucket=BUCKET, Key="mp/basic", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = S3.upload_part(Bucket=BUCKET, Key="mp/basic", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    assert e2 == '"%s"' % hashlib.md5(p2).hexdigest()
    lp = S3.list_parts(Bucket=BUCKET, Key="mp/basic", UploadId=up)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == \
        [(1, len(p1), e1), (2, len(p2), e2), (3, len(p3), e3)], lp["Parts"]
    r = S3.complete_multipart_upload(
        Bucket=BUCKET, Key="mp/basic", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 3, "ETag": e3}]})
    body = p1 + p2 + p3
    assert r["ETag"] == etag_of([p1, p2, p3]), r["ETag"]
    h = S3.head_object(Bucket=BUCKET, Key="mp/basic")
    assert h["ContentLength"] == len(body) and h["ETag"] == r["ETag"]
    assert h["ContentType"] == "text/x-parts" and h["Metadata"] == {"color": "green"}, h
    assert h["CacheControl"] == "no-cache" and h["StorageClass"] == "STANDARD_IA", h
    g = S3.get_object(Bucket=BUCKET, Key="mp/basic")
    assert hashlib.sha256(g["Body"].read()).digest() == hashlib.sha256(body).digest()
    b1, b2 = len(p1), len(p1) + len(p2)
    for a, b in ((0, 0), (b1 - 10, b1 + 10), (b1 - 1, b1), (b2 - 5, b2 + 5),
                 (100, len(body) - 100), (4 * MiB - 1, b2 + 4 * MiB), (b2, len(body) - 1)):
        got = S3.get_object(Bucket=BUCKET, Key="mp/basic", Range=f"bytes={a}-{b}")
        assert got["Body"].read() == body[a:b + 1], (a, b)
        assert got["ContentRange"] == f"bytes {a}-{min(b, len(body) - 1)}/{len(body)}"
    got = S3.get_object(Bucket=BUCKET, Key="mp/basic", Range="bytes=-7")["Body"].read()
    assert got == body[-7:]
    for n, (off, part) in enumerate(((0, p1), (b1, p2), (b2, p3)), 1):
        g = S3.get_object(Bucket=BUCKET, Key="mp/basic", PartNumber=n)
        assert g["PartsCount"] == 3 and g["Body"].read() == part, n
        assert g["ContentRange"] == f"bytes {off}-{off + len(part) - 1}/{len(body)}"
        h = S3.head_object(Bucket=BUCKET, Key="mp/basic", PartNumber=n)
        assert h["ContentLength"] == len(part) and h["PartsCount"] == 3
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="mp/basic", PartNumber=4)) == \
        ("InvalidPartNumber", 416)
    # The upload is gone once completed.
    assert err_code(lambda: S3.list_parts(Bucket=BUCKET, Key="mp/basic", UploadId=up)) == \
        ("NoSuchUpload", 404)
    # partNumber=1 of a simple object is the object.
    S3.put_object(Bucket=BUCKET, Key="simple", Body=b"abc")
    assert S3.get_object(Bucket=BUCKET, Key="simple", PartNumber=1)["Body"].read() == b"abc"
    # Overwritten by a simple PUT, then deleted.
    S3.put_object(Bucket=BUCKET, Key="mp/basic", Body=b"now simple")
    assert S3.get_object(Bucket=BUCKET, Key="mp/basic")["Body"].read() == b"now simple"
    S3.delete_object(Bucket=BUCKET, Key="mp/basic")


def test_small_parts():
    """A one-part upload of a few bytes, an empty last part, and parts of 1
    byte (the last may be small)."""
    r = upload("mp/tiny", {1: b"hello"})
    assert r["ETag"] == etag_of([b"hello"])
    assert S3.get_object(Bucket=BUCKET, Key="mp/tiny")["Body"].read() == b"hello"
    # Completed over a multipart object (whose parts go).
    r = upload("mp/tiny", {1: b"again!"})
    assert S3.get_object(Bucket=BUCKET, Key="mp/tiny")["Body"].read() == b"again!"
    p1 = gt.data_of(5 * MiB, 4)
    upload("mp/emptylast", {1: p1, 2: b""})
    assert S3.get_object(Bucket=BUCKET, Key="mp/emptylast")["Body"].read() == p1
    g = S3.get_object(Bucket=BUCKET, Key="mp/emptylast", Range=f"bytes={5 * MiB - 2}-")
    assert g["Body"].read() == p1[-2:]


def test_errors():
    key = "mp/errors"
    bogus = "0123456789abcdef0123456789abcdef"
    assert err_code(lambda: S3.upload_part(Bucket=BUCKET, Key=key, UploadId=bogus,
                                           PartNumber=1, Body=b"x")) == ("NoSuchUpload", 404)
    assert err_code(lambda: S3.upload_part(Bucket=BUCKET, Key=key, UploadId="nonsense",
                                           PartNumber=1, Body=b"x")) == ("NoSuchUpload", 404)
    assert err_code(lambda: S3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=bogus)) == \
        ("NoSuchUpload", 404)
    assert err_code(lambda: S3.list_parts(Bucket=BUCKET, Key=key, UploadId=bogus)) == \
        ("NoSuchUpload", 404)
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=bogus,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})) == ("NoSuchUpload", 404)
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    for bad in (0, 10001):
        code = err_code(lambda: S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up,
                                               PartNumber=bad, Body=b"x"))
        assert code[1] == 400, (bad, code)
    small = b"s" * 1000
    big = gt.data_of(5 * MiB, 5)
    e1 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=small)["ETag"]
    e2 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2, Body=big)["ETag"]
    e3 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3, Body=small)["ETag"]
    # A part that is not 5 MiB, not last.
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})) == \
        ("EntityTooSmall", 400)
    # Unknown part, wrong ETag.
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2}, {"PartNumber": 4, "ETag": e3}]})) == ("InvalidPart", 400)
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e1}, {"PartNumber": 3, "ETag": e3}]})) == ("InvalidPart", 400)
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 3, "ETag": e3}, {"PartNumber": 2, "ETag": e2}]})) == \
        ("InvalidPartOrder", 400)
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": []}))[1] == 400
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key=key)) == ("NoSuchKey", 404)
    # Parts 2 and 3 only: part 1 is not listed, hence deleted.
    r = S3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e3}]})
    assert r["ETag"] == etag_of([big, small])
    assert S3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == big + small
    # Abort: the upload and its parts go.
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=big)
    S3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)
    assert err_code(lambda: S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up,
                                           PartNumber=2, Body=b"x")) == ("NoSuchUpload", 404)
    assert err_code(lambda: S3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)) == \
        ("NoSuchUpload", 404)
    # The completed object is untouched by the aborted upload.
    assert S3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == big + small
    # A wrong Content-MD5 on a part is refused.
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert err_code(lambda: S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1,
                                           Body=b"data", ContentMD5=wrong))[0] == "BadDigest"
    r = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=b"data",
                       ChecksumAlgorithm="CRC32")
    assert r["ETag"] == '"%s"' % hashlib.md5(b"data").hexdigest()
    S3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)


def test_list_parts():
    key = "mp/listparts"
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    for n in (1, 2, 3, 5, 8):
        S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=n, Body=b"p%d" % n)
    r = S3.list_parts(Bucket=BUCKET, Key=key, UploadId=up, MaxParts=2)
    assert [p["PartNumber"] for p in r["Parts"]] == [1, 2] and r["IsTruncated"], r
    assert r["NextPartNumberMarker"] == 2
    r = S3.list_parts(Bucket=BUCKET, Key=key, UploadId=up, PartNumberMarker=2)
    assert [p["PartNumber"] for p in r["Parts"]] == [3, 5, 8] and not r["IsTruncated"]
    assert r["Parts"][1]["Size"] == 2
    S3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)


def test_list_uploads():
    b = "mpulist"
    S3.create_bucket(Bucket=b)
    ids = {}
    for k in ("a/1", "a/2", "b/1", "c", "c"):
        ids.setdefault(k, []).append(
            S3.create_multipart_upload(Bucket=b, Key=k)["UploadId"])
    r = S3.list_multipart_uploads(Bucket=b)
    got = [(u["Key"], u["UploadId"]) for u in r["Uploads"]]
    want = sorted((k, i) for k, v in ids.items() for i in v)
    assert got == want, (got, want)
    r = S3.list_multipart_uploads(Bucket=b, Prefix="a/")
    assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"]
    r = S3.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"], r
    assert [u["Key"] for u in r["Uploads"]] == ["c", "c"]
    r = S3.list_multipart_uploads(Bucket=b, MaxUploads=2)
    assert r["IsTruncated"] and len(r["Uploads"]) == 2
    assert (r["NextKeyMarker"], r["NextUploadIdMarker"]) == ("a/2", ids["a/2"][0]), r
    r = S3.list_multipart_uploads(Bucket=b, KeyMarker="a/2")
    assert [u["Key"] for u in r["Uploads"]] == ["b/1", "c", "c"]
    r = S3.list_multipart_uploads(Bucket=b, KeyMarker="c", UploadIdMarker=min(ids["c"]))
    assert [u["UploadId"] for u in r["Uploads"]] == [max(ids["c"])]
    for k, v in ids.items():
        for i in v:
            S3.abort_multipart_upload(Bucket=b, Key=k, UploadId=i)
    assert S3.list_multipart_uploads(Bucket=b).get("Uploads", []) == []


def test_upload_part_copy():
    src = gt.data_of(9 * MiB + 5, 11)
    S3.put_object(Bucket=BUCKET, Key="copysrc", Body=src)
    etag = S3.head_object(Bucket=BUCKET, Key="copysrc")["ETag"]
    key = "mp/partcopy"
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    r1 = S3.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1,
                             CopySource={"Bucket": BUCKET, "Key": "copysrc"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}", CopySourceIfMatch=etag)
    assert r1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(src[:5 * MiB]).hexdigest()
    r2 = S3.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2,
                             CopySource=f"{BUCKET}/copysrc",
                             CopySourceRange=f"bytes=100-{5 * MiB + 99}")
    assert err_code(lambda: S3.upload_part_copy(
        Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3, CopySource=f"{BUCKET}/copysrc",
        CopySourceIfNoneMatch=etag)) == ("PreconditionFailed", 412)
    assert err_code(lambda: S3.upload_part_copy(
        Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3, CopySource=f"{BUCKET}/copysrc",
        CopySourceRange=f"bytes=0-{len(src)}"))[1] == 416
    # A whole small (inline) source.
    S3.put_object(Bucket=BUCKET, Key="copysmall", Body=b"tiny source")
    r3 = S3.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3,
                             CopySource=f"{BUCKET}/copysmall")
    S3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]}
        for n, r in ((1, r1), (2, r2), (3, r3))]})
    got = S3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert got == src[:5 * MiB] + src[100:5 * MiB + 100] + b"tiny source"


def test_copy_object():
    big = gt.data_of(13 * MiB + 1, 21)
    S3.put_object(Bucket=BUCKET, Key="cp/big", Body=big, ContentType="x/big",
                  Metadata={"k": "v"})
    S3.put_object(Bucket=BUCKET, Key="cp/small", Body=b"small one", Metadata={"s": "1"})
    upload("cp/mp", {1: big[:5 * MiB], 2: big[5 * MiB:]}, Metadata={"m": "p"})
    for src, body, meta in (("cp/big", big, {"k": "v"}), ("cp/small", b"small one", {"s": "1"}),
                            ("cp/mp", big, {"m": "p"})):
        r = S3.copy_object(Bucket=BUCKET, Key=src + ".copy", CopySource=f"{BUCKET}/{src}")
        assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), src
        g = S3.get_object(Bucket=BUCKET, Key=src + ".copy")
        assert g["Body"].read() == body and g["Metadata"] == meta, src
    assert S3.head_object(Bucket=BUCKET, Key="cp/big.copy")["ContentType"] == "x/big"
    # REPLACE takes the request's metadata.
    S3.copy_object(Bucket=BUCKET, Key="cp/big.r", CopySource=f"{BUCKET}/cp/big",
                   MetadataDirective="REPLACE", Metadata={"new": "yes"}, ContentType="x/new")
    h = S3.head_object(Bucket=BUCKET, Key="cp/big.r")
    assert h["Metadata"] == {"new": "yes"} and h["ContentType"] == "x/new", h
    # Onto itself: only with REPLACE (a metadata change).
    assert err_code(lambda: S3.copy_object(Bucket=BUCKET, Key="cp/small",
                                           CopySource=f"{BUCKET}/cp/small")) == \
        ("InvalidRequest", 400)
    for k, body in (("cp/small", b"small one"), ("cp/big", big), ("cp/mp", big)):
        S3.copy_object(Bucket=BUCKET, Key=k, CopySource=f"{BUCKET}/{k}",
                       MetadataDirective="REPLACE", Metadata={"changed": k})
        g = S3.get_object(Bucket=BUCKET, Key=k)
        assert g["Metadata"] == {"changed": k} and g["Body"].read() == body, k
    # Conditions on the source.
    etag = S3.head_object(Bucket=BUCKET, Key="cp/small")["ETag"]
    lm = S3.head_object(Bucket=BUCKET, Key="cp/small")["LastModified"]
    cs = f"{BUCKET}/cp/small"
    S3.copy_object(Bucket=BUCKET, Key="cp/c1", CopySource=cs, CopySourceIfMatch=etag)
    for kw in ({"CopySourceIfMatch": '"nope"'}, {"CopySourceIfNoneMatch": etag},
               {"CopySourceIfModifiedSince": lm + datetime.timedelta(days=1)},
               {"CopySourceIfUnmodifiedSince": lm - datetime.timedelta(days=1)}):
        assert err_code(lambda: S3.copy_object(Bucket=BUCKET, Key="cp/c2", CopySource=cs,
                                               **kw)) == ("PreconditionFailed", 412), kw
    S3.copy_object(Bucket=BUCKET, Key="cp/c3", CopySource=cs,
                   CopySourceIfModifiedSince=lm - datetime.timedelta(days=1),
                   CopySourceIfUnmodifiedSince=lm + datetime.timedelta(days=1))
    # Missing source, other bucket, someone else's bucket.
    assert err_code(lambda: S3.copy_object(Bucket=BUCKET, Key="cp/x",
                                           CopySource=f"{BUCKET}/nosuch")) == ("NoSuchKey", 404)
    assert err_code(lambda: S3.copy_object(Bucket=BUCKET, Key="cp/x",
                                           CopySource="nosuchbucket/k")) == ("NoSuchBucket", 404)
    S3.create_bucket(Bucket="cpother")
    S3.copy_object(Bucket="cpother", Key="k", CopySource=f"{BUCKET}/cp/big.copy")
    assert S3.get_object(Bucket="cpother", Key="k")["Body"].read() == big
    alt = C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    alt.create_bucket(Bucket="altbucket")
    assert err_code(lambda: alt.copy_object(Bucket="altbucket", Key="k",
                                            CopySource=f"{BUCKET}/cp/small"))[1] == 403


def test_copy_rss():
    """A 256 MiB copy streams: the gateway's peak RSS grows by far less, and
    the answer (200, spaces, then the document) outlives a 15 s client read
    timeout."""
    size = 256 * MiB
    s3 = C.client(read_timeout=900)
    block = gt.data_of(MiB, 88)
    up = S3.create_multipart_upload(Bucket=BUCKET, Key="rss/src")["UploadId"]
    parts, h = [], hashlib.md5()
    for n in range(1, 5):
        body = b"".join(block[i % 97:] + block[:i % 97] for i in range(64))
        h.update(body)
        parts.append({"PartNumber": n, "ETag": S3.upload_part(
            Bucket=BUCKET, Key="rss/src", UploadId=up, PartNumber=n, Body=body)["ETag"]})
        del body
    S3.complete_multipart_upload(Bucket=BUCKET, Key="rss/src", UploadId=up,
                                 MultipartUpload={"Parts": parts})
    before = C.gw.status("VmRSS")
    t0 = time.time()
    # A short read timeout: the gateway's keepalive spaces hold the answer.
    r = C.client(read_timeout=15).copy_object(Bucket=BUCKET, Key="rss/dst",
                                              CopySource=f"{BUCKET}/rss/src")
    took = time.time() - t0
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % h.hexdigest()
    hwm = C.gw.status("VmHWM")
    print(f"    gateway RSS before copy {before >> 10} MiB, VmHWM after {size >> 20} MiB "
          f"copy {hwm >> 10} MiB; copy {took:.1f} s, load {os.getloadavg()[0]:.1f}")
    assert hwm - before < 100 * 1024 * (3 if "asan" in gt.GATEWAY else 1), (before, hwm)
    g = S3.get_object(Bucket=BUCKET, Key="rss/dst")["Body"]
    h2 = hashlib.md5()
    while True:
        b = g.read(4 * MiB)
        if not b:
            break
        h2.update(b)
    assert h2.hexdigest() == h.hexdigest()
    S3.delete_object(Bucket=BUCKET, Key="rss/dst")


def test_awscli():
    """aws s3 cp of 100 MiB: multipart (8 MiB parts) both ways."""
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=C.creds, AWS_CONFIG_FILE="/dev/null",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    src = os.path.join(gt.TMP, "mpu-src")
    dst = os.path.join(gt.TMP, "mpu-dst")
    body = gt.data_of(100 * MiB, 12)
    with open(src, "wb") as f:
        f.write(body)
    aws = ["aws", "--endpoint-url", C.url]
    out = subprocess.run(aws + ["s3", "cp", src, f"s3://{BUCKET}/cli100"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    h = subprocess.run(aws + ["s3api", "head-object", "--bucket", BUCKET, "--key", "cli100"],
                       env=env, check=True, capture_output=True, text=True).stdout
    assert '-13\\"' in h, h       # 13 parts of 8 MiB
    out = subprocess.run(aws + ["s3", "cp", f"s3://{BUCKET}/cli100", dst], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with open(dst, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(body).digest()
    os.unlink(src)
    os.unlink(dst)


def test_restart_and_two_gateways():
    """The upload lives on the nodes: kill -9 the gateway mid-upload, restart
    it, and finish the upload through it and a second gateway."""
    global S3
    key = "mp/crash"
    parts = {n: gt.data_of(5 * MiB, 200 + n) for n in range(1, 5)}
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etags = {1: S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1,
                               Body=parts[1])["ETag"]}
    # Part 2 is cut off by the kill: it never commits.
    import threading
    s3b = C.client()

    def slow_part():
        try:
            s3b.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2, Body=parts[2])
        except Exception:
            pass
    t = threading.Thread(target=slow_part)
    t.start()
    time.sleep(0.05)
    C.gw.signal(signal.SIGKILL)
    C.gw.proc.wait()
    t.join()
    os.unlink(C.gw.port_file)
    C.gw.start()
    C.url = f"http://127.0.0.1:{C.gw.port}"
    s3 = C.client()
    # A second gateway on the same cluster.
    pf2 = os.path.join(gt.TMP, "gateway2.port")
    gw2 = gt.Daemon("gateway2", [a if a != C.gw.port_file else pf2 for a in C.gw.args],
                    port_file=pf2)
    try:
        other = gt.boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{gw2.port}",
            aws_access_key_id="STRATATESTKEY0001",
            aws_secret_access_key="secretsecretsecretsecretsecret0001", region_name="us-east-1",
            config=gt.Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                             retries={"max_attempts": 1}))
        lp = other.list_parts(Bucket=BUCKET, Key=key, UploadId=up)
        assert [p["PartNumber"] for p in lp["Parts"]] in ([1], [1, 2]), lp["Parts"]
        etags[2] = other.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2,
                                     Body=parts[2])["ETag"]
        etags[3] = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3,
                                  Body=parts[3])["ETag"]
        etags[4] = other.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=4,
                                     Body=parts[4])["ETag"]
        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, 5)]})
        want = b"".join(parts[n] for n in range(1, 5))
        assert other.get_object(Bucket=BUCKET, Key=key)["Body"].read() == want
    finally:
        assert gw2.stop() == 0, gw2.log_text()
    S3 = s3


def test_node_stopped():
    """A stopped node: part writes finish (done, or 503 SlowDown when it holds
    the parts listing) within the write deadline, never hang; listings are
    read from another replica; once it is back the upload completes."""
    key = "mp/stopped"
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    one = gt.data_of(5 * MiB, 31)
    e1 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=one)["ETag"]
    slow = C.client(read_timeout=60)
    for victim in range(gt.NODES):
        n = C.nodes[victim]
        n.signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            code = err_code(lambda: slow.upload_part(Bucket=BUCKET, Key=key, UploadId=up,
                                                     PartNumber=2, Body=b"two"))
            assert code in ((None, 200), ("SlowDown", 503)), (victim, code)
            assert time.time() - t0 < 25, time.time() - t0
            lp = slow.list_parts(Bucket=BUCKET, Key=key, UploadId=up)
            assert lp["Parts"][0]["PartNumber"] == 1
        finally:
            n.signal(signal.SIGCONT)
        print(f"    node{victim + 1} stopped: part 2 {code[0] or 'ok'}, "
              f"{time.time() - t0:.1f} s", flush=True)
        time.sleep(4.2)     # the gateway's down period passes
    e2 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2, Body=b"two")["ETag"]
    S3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert S3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == one + b"two"


def test_listing_and_delete():
    """Complete and CopyObject update the bucket listing (multipart ETag,
    size, storage class); conditional PUT/DELETE see the multipart ETag;
    DeleteObjects deletes multipart objects."""
    p1, p2 = gt.data_of(5 * MiB, 41), gt.data_of(1000, 42)
    upload("ls/mp", {1: p1, 2: p2}, StorageClass="STANDARD_IA")
    S3.copy_object(Bucket=BUCKET, Key="ls/cp", CopySource=f"{BUCKET}/ls/mp")
    got = {o["Key"]: o for o in
           S3.list_objects_v2(Bucket=BUCKET, Prefix="ls/").get("Contents", [])}
    assert sorted(got) == ["ls/cp", "ls/mp"], got
    assert got["ls/mp"]["ETag"] == etag_of([p1, p2]), got
    assert got["ls/mp"]["Size"] == len(p1) + len(p2), got
    assert got["ls/mp"]["StorageClass"] == "STANDARD_IA", got
    assert got["ls/cp"]["ETag"] == '"%s"' % hashlib.md5(p1 + p2).hexdigest(), got
    # conditions compare the multipart ETag
    mp = etag_of([p1, p2])
    c = with_headers(C.client(), "PutObject", {"If-None-Match": mp})
    assert err_code(lambda: c.put_object(Bucket=BUCKET, Key="ls/mp", Body=b"x")) == \
        ("PreconditionFailed", 412)
    c = with_headers(C.client(), "DeleteObject", {"If-Match": '"bad"'})
    assert err_code(lambda: c.delete_object(Bucket=BUCKET, Key="ls/mp")) == \
        ("PreconditionFailed", 412)
    with_headers(C.client(), "DeleteObject", {"If-Match": mp}) \
        .delete_object(Bucket=BUCKET, Key="ls/mp")
    assert err_code(lambda: S3.head_object(Bucket=BUCKET, Key="ls/mp"))[1] == 404
    upload("ls/mp2", {1: p1, 2: p2})
    r = S3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "ls/mp2"},
                                                            {"Key": "ls/cp"}]})
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == ["ls/cp", "ls/mp2"], r
    assert not r.get("Errors"), r
    assert S3.list_objects_v2(Bucket=BUCKET, Prefix="ls/").get("KeyCount") == 0
    assert err_code(lambda: S3.get_object(Bucket=BUCKET, Key="ls/mp2"))[1] == 404


def node_frags():
    """(live fragments, their bytes) on all 6 nodes (tests/node-frags)."""
    tool = os.environ.get("STRATA_NODE_FRAGS")
    assert tool, "STRATA_NODE_FRAGS (the node-frags binary) is not set"
    out = subprocess.run([tool, "8", *[f"127.0.0.1:{p}" for p in C.node_ports]],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def test_no_leaks():
    """Replaced, deleted and aborted data leaves the nodes: EC segments of
    overwritten objects, re-uploaded parts, parts a Complete did not list,
    aborted uploads' parts and records, a multipart object's parts once it
    is replaced by a copy and deleted. Live fragments on the nodes come back
    to what they were."""
    before = node_frags()
    key = "leak/obj"
    S3.put_object(Bucket=BUCKET, Key=key, Body=gt.data_of(9 * MiB, 51))      # EC, 3 segments
    S3.put_object(Bucket=BUCKET, Key=key, Body=gt.data_of(6 * MiB, 52))      # EC over EC
    S3.put_object(Bucket=BUCKET, Key=key, Body=b"small")                      # inline over EC
    up = S3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1,
                   Body=gt.data_of(5 * MiB, 53))
    p1 = gt.data_of(5 * MiB, 54)                                             # replaces part 1
    e1 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=2,
                        Body=b"two")["ETag"]
    S3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=3,
                   Body=b"not listed")
    S3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert S3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == p1 + b"two"
    mid = node_frags()
    # the multipart object replaced by another one, then by a copy
    upload(key, {1: gt.data_of(5 * MiB, 55), 2: b"x"})
    S3.put_object(Bucket=BUCKET, Key="leak/src", Body=gt.data_of(5 * MiB, 56))
    S3.copy_object(Bucket=BUCKET, Key=key, CopySource=f"{BUCKET}/leak/src")
    # an aborted upload
    up = S3.create_multipart_upload(Bucket=BUCKET, Key="leak/aborted")["UploadId"]
    for n in (1, 2):
        S3.upload_part(Bucket=BUCKET, Key="leak/aborted", UploadId=up, PartNumber=n,
                       Body=gt.data_of(5 * MiB, 56 + n))
    S3.abort_multipart_upload(Bucket=BUCKET, Key="leak/aborted", UploadId=up)
    S3.delete_object(Bucket=BUCKET, Key=key)
    S3.delete_object(Bucket=BUCKET, Key="leak/src")
    # The garbage goes in the background once the answers are out.
    deadline = time.time() + 30
    while node_frags() != before and time.time() < deadline:
        time.sleep(0.5)
    after = node_frags()
    assert after == before, (before, mid, after)
    # mid: the completed object's parts (5 MiB: 2 segments, and 1; EC 4+2:
    # 6 fragments each) and its head (3 replicas); nothing of the replaced
    # part, part 3 or the EC objects it replaced
    assert mid[0] == before[0] + 3 * 6 + 3, (before, mid)


TESTS = [test_basic, test_small_parts, test_errors, test_list_parts, test_list_uploads,
         test_upload_part_copy, test_copy_object, test_listing_and_delete, test_no_leaks,
         test_awscli,
         test_copy_rss,
         test_node_stopped, test_restart_and_two_gateways]


def main():
    global C, S3
    C = gt.Cluster()
    gt.C = C
    S3 = C.client()
    return gt.cluster.run(C, TESTS, gt.ONLY, first=lambda: S3.create_bucket(Bucket=BUCKET))


if __name__ == "__main__":
    sys.exit(main())
