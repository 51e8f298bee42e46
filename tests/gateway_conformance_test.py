#!/usr/bin/python3
"""S3 conformance regressions of strata-gateway: one case per behaviour the
ceph s3-tests suite found missing or wrong (docs/s3-conformance.md), on the
same real cluster as gateway_test.py (its Cluster, clients and runner).

usage: gateway_conformance_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]
"""
import datetime
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (parses the same argv)
from cluster import with_headers  # noqa: E402
from gateway_test import err_code  # noqa: E402

B = gt.BUCKET


def test_conditional_put():
    S3 = gt.S3
    key = "cond-put"
    assert err_code(lambda: with_headers(gt.C.client(), "PutObject", {"If-Match": "*"})
                    .put_object(Bucket=B, Key=key, Body=b"a")) == ("NoSuchKey", 404)
    assert err_code(lambda: S3.get_object(Bucket=B, Key=key))[0] == "NoSuchKey"
    etag = with_headers(gt.C.client(), "PutObject", {"If-None-Match": "*"}) \
        .put_object(Bucket=B, Key=key, Body=b"one")["ETag"]
    for inm in ("*", etag, etag.strip('"')):
        c = with_headers(gt.C.client(), "PutObject", {"If-None-Match": inm})
        assert err_code(lambda: c.put_object(Bucket=B, Key=key, Body=b"two")) == \
            ("PreconditionFailed", 412), inm
    c = with_headers(gt.C.client(), "PutObject", {"If-Match": '"0123"'})
    assert err_code(lambda: c.put_object(Bucket=B, Key=key, Body=b"two")) == \
        ("PreconditionFailed", 412)
    # a refused large (EC) PUT leaves the object as it was
    c = with_headers(gt.C.client(), "PutObject", {"If-Match": '"0123"'})
    assert err_code(lambda: c.put_object(Bucket=B, Key=key,
                                         Body=gt.data_of(5 * gt.MiB, 3)))[1] == 412
    assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"one"
    with_headers(gt.C.client(), "PutObject", {"If-Match": etag}) \
        .put_object(Bucket=B, Key=key, Body=b"three")
    with_headers(gt.C.client(), "PutObject", {"If-None-Match": '"other"'}) \
        .put_object(Bucket=B, Key=key, Body=b"four")
    assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"four"
    S3.delete_object(Bucket=B, Key=key)


def test_conditional_delete():
    S3 = gt.S3
    key = "cond-del"
    etag = S3.put_object(Bucket=B, Key=key, Body=b"12345")["ETag"]
    mtime = S3.head_object(Bucket=B, Key=key)["LastModified"]
    old = datetime.datetime(2015, 1, 1).strftime("%a, %d %b %Y %H:%M:%S GMT")
    for h in ({"If-Match": '"bad"'}, {"x-amz-if-match-size": "9999"},
              {"x-amz-if-match-last-modified-time": old}):
        c = with_headers(gt.C.client(), "DeleteObject", h)
        assert err_code(lambda: c.delete_object(Bucket=B, Key=key)) == \
            ("PreconditionFailed", 412), h
    assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"12345"
    with_headers(gt.C.client(), "DeleteObject", {
        "If-Match": etag, "x-amz-if-match-size": "5",
        "x-amz-if-match-last-modified-time": mtime.strftime("%a, %d %b %Y %H:%M:%S GMT")
    }).delete_object(Bucket=B, Key=key)
    assert err_code(lambda: S3.head_object(Bucket=B, Key=key))[1] == 404
    # no object: 204 whatever the conditions say
    r = with_headers(gt.C.client(), "DeleteObject", {"If-Match": '"bad"'}) \
        .delete_object(Bucket=B, Key=key)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def http(method, url, headers=None, data=None):
    """(status, body) of a plain request (anonymous unless url is presigned)."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def presign(url, expires):
    """A GET URL presigned with X-Amz-Expires=expires by botocore's own
    signer (the CRT one Debian's botocore uses refuses expires <= 0)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url=url)
    S3SigV4QueryAuth(Credentials("STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"),
                     "s3", "us-east-1", expires=expires).add_auth(req)
    return req.prepare().url


def test_buckets_extra():
    S3 = gt.S3
    # LocationConstraint: what the bucket was created with
    S3.create_bucket(Bucket="located",
                     CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert S3.get_bucket_location(Bucket="located")["LocationConstraint"] == "us-east-1"
    assert S3.get_bucket_location(Bucket=B)["LocationConstraint"] in (None, "")
    # re-create by its owner in us-east-1: 200, the bucket as it was
    S3.create_bucket(Bucket="located")
    assert S3.get_bucket_location(Bucket="located")["LocationConstraint"] == "us-east-1"
    S3.delete_bucket(Bucket="located")
    # versioning never enabled: an empty configuration; no tags
    v = S3.get_bucket_versioning(Bucket=B)
    assert v["ResponseMetadata"]["HTTPStatusCode"] == 200 and "Status" not in v, v
    assert err_code(lambda: S3.get_bucket_tagging(Bucket=B)) == ("NoSuchTagSet", 404)
    # anonymous: NoSuchBucket before AccessDenied
    st, body = http("GET", f"{gt.C.url}/nosuchbucket7/k")
    assert st == 404 and b"<Code>NoSuchBucket</Code>" in body, (st, body)
    st, body = http("GET", f"{gt.C.url}/{B}/k")
    assert st == 403 and b"<Code>AccessDenied</Code>" in body, (st, body)
    st, body = http("PUT", f"{gt.C.url}/anoncreate", data=b"")
    assert st == 403, (st, body)
    assert err_code(lambda: S3.head_bucket(Bucket="anoncreate"))[1] == 404
    st, _ = http("GET", f"{gt.C.url}/")
    assert st == 403


def test_options_presigned_encoding():
    S3 = gt.S3
    S3.put_object(Bucket=B, Key="enc", Body=b"x", ContentEncoding="gzip, aws-chunked")
    assert S3.head_object(Bucket=B, Key="enc")["ContentEncoding"] == "gzip"
    S3.put_object(Bucket=B, Key="enc", Body=b"x", ContentEncoding="aws-chunked")
    assert "ContentEncoding" not in S3.head_object(Bucket=B, Key="enc")
    # CORS preflight without a CORS configuration
    url = S3.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "enc"},
                                    ExpiresIn=100000)
    st, body = http("OPTIONS", url)
    assert st == 400 and b"<Code>BadRequest</Code>" in body, (st, body)
    st, body = http("OPTIONS", url, {"Origin": "http://example.com",
                                     "Access-Control-Request-Method": "GET"})
    assert st == 403, (st, body)
    assert http("GET", url)[0] == 200
    # presigned URLs that expired when they were signed: 403
    for exp in (0, -7):
        url = presign(f"{gt.C.url}/{B}/enc", exp)
        st, body = http("GET", url)
        assert st == 403 and b"Request has expired" in body, (exp, st, body)
    S3.delete_object(Bucket=B, Key="enc")


def _crc64_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x9a6c9329ac4bc9b5 if c & 1 else c >> 1
        t.append(c)
    return t


CRC64_TABLE = _crc64_table()


def crc64nvme(data):
    crc, t = (1 << 64) - 1, CRC64_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xff] ^ (crc >> 8)
    return (crc ^ ((1 << 64) - 1)).to_bytes(8, "big")


def test_crc64nvme():
    import base64
    for size in (1000, 70 * 1024 + 5):       # replicated and EC layouts
        body = gt.data_of(size, 11)
        ck = base64.b64encode(crc64nvme(body)).decode()
        with_headers(gt.C.client(), "PutObject", {"x-amz-checksum-crc64nvme": ck}) \
            .put_object(Bucket=B, Key="crc64", Body=body)
        h = with_headers(gt.C.client(), "HeadObject", {"x-amz-checksum-mode": "ENABLED"}) \
            .head_object(Bucket=B, Key="crc64")
        assert h["ResponseMetadata"]["HTTPHeaders"].get("x-amz-checksum-crc64nvme") == ck, h
        bad = base64.b64encode(crc64nvme(body + b"x")).decode()
        c = with_headers(gt.C.client(), "PutObject", {"x-amz-checksum-crc64nvme": bad})
        assert err_code(lambda: c.put_object(Bucket=B, Key="crc64", Body=body)) == \
            ("BadDigest", 400)
    gt.S3.delete_object(Bucket=B, Key="crc64")


def test_acl_owner_enforced():
    S3 = gt.S3
    S3.put_object(Bucket=B, Key="acl", Body=b"x")
    for acl in (S3.get_bucket_acl(Bucket=B), S3.get_object_acl(Bucket=B, Key="acl")):
        assert acl["Owner"] == {"ID": "default", "DisplayName": "default"}, acl
        assert acl["Grants"] == [{"Grantee": {"ID": "default", "DisplayName": "default",
                                              "Type": "CanonicalUser"},
                                  "Permission": "FULL_CONTROL"}], acl
    assert err_code(lambda: S3.get_object_acl(Bucket=B, Key="noacl")) == ("NoSuchKey", 404)
    alt = gt.C.client("STRATATESTKEY0002", "secretsecretsecretsecretsecret0002")
    assert err_code(lambda: alt.get_bucket_acl(Bucket=B))[1] == 403
    # what the ACL already is can be set; anything else is refused
    S3.put_bucket_acl(Bucket=B, ACL="private")
    S3.put_object_acl(Bucket=B, Key="acl", ACL="bucket-owner-full-control")
    S3.put_object(Bucket=B, Key="acl", Body=b"y", ACL="private")
    assert err_code(lambda: S3.put_object_acl(Bucket=B, Key="noacl", ACL="private"))[0] == \
        "NoSuchKey"
    for fn in (lambda: S3.put_bucket_acl(Bucket=B, ACL="public-read"),
               lambda: S3.put_object_acl(Bucket=B, Key="acl", ACL="public-read"),
               lambda: S3.put_object(Bucket=B, Key="acl", Body=b"z", ACL="public-read-write"),
               lambda: S3.put_object(Bucket=B, Key="acl", Body=b"z", GrantRead='id="alt"')):
        assert err_code(fn) == ("AccessControlListNotSupported", 400)
    assert err_code(lambda: S3.create_bucket(Bucket="aclbucket", ACL="public-read")) == \
        ("InvalidBucketAclWithObjectOwnership", 400)
    assert S3.get_object(Bucket=B, Key="acl")["Body"].read() == b"y"
    S3.delete_object(Bucket=B, Key="acl")


def test_chunked_transfer_encoding():
    """PUT with Transfer-Encoding: chunked and no Content-Length: the length
    is known at the body's end (inline, and EC over several segments)."""
    import base64
    import hashlib
    import http.client
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    port = int(gt.C.url.rsplit(":", 1)[1])
    for size in (0, 3, 64 * 1024 + 1, 9 * gt.MiB + 7):
        body = gt.data_of(size, 21)
        url = f"{gt.C.url}/{B}/te-{size}"
        # signed with the body's SHA-256 (botocore's signer computes it)
        req = AWSRequest(method="PUT", url=url, data=body, headers={
            "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})
        S3SigV4Auth(Credentials("STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"),
                    "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.putrequest("PUT", f"/{B}/te-{size}", skip_accept_encoding=True)
        for k, v in req.headers.items():
            if k.lower() != "content-length":
                conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, size, 300000):           # chunks across segment edges
            piece = body[i:i + 300000]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        out = r.read()
        assert r.status == 200, (size, r.status, out)
        assert r.getheader("ETag") == '"%s"' % hashlib.md5(body).hexdigest()
        conn.close()
        h = gt.S3.head_object(Bucket=B, Key=f"te-{size}")
        assert h["ContentLength"] == size, (size, h["ContentLength"])
        assert gt.S3.get_object(Bucket=B, Key=f"te-{size}")["Body"].read() == body, size
        gt.S3.delete_object(Bucket=B, Key=f"te-{size}")


def test_complete_conditional():
    """CompleteMultipartUpload with If-Match / If-None-Match, as a PUT: a
    refused Complete leaves the upload (and the object) as they were."""
    S3 = gt.S3
    key = "cond-mpu"

    def complete(headers, body=b"abc"):
        up = S3.create_multipart_upload(Bucket=B, Key=key)["UploadId"]
        e = S3.upload_part(Bucket=B, Key=key, UploadId=up, PartNumber=1, Body=body)["ETag"]
        c = with_headers(gt.C.client(), "CompleteMultipartUpload", headers)
        return up, lambda: c.complete_multipart_upload(
            Bucket=B, Key=key, UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})

    for h in ({"If-Match": "*"}, {"If-Match": '"bad"'}):
        _, fn = complete(h)
        assert err_code(fn) == ("NoSuchKey", 404), h
    etag = complete({"If-None-Match": "*"})[1]()["ETag"]
    for h in ({"If-None-Match": "*"}, {"If-None-Match": etag}, {"If-Match": '"bad"'}):
        up, fn = complete(h, b"other")
        assert err_code(fn) == ("PreconditionFailed", 412), h
        # the upload is still there: the same Complete without the condition
        parts = S3.list_parts(Bucket=B, Key=key, UploadId=up)["Parts"]
        assert len(parts) == 1, parts
        S3.abort_multipart_upload(Bucket=B, Key=key, UploadId=up)
    assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"abc"
    etag2 = complete({"If-Match": etag}, b"def")[1]()["ETag"]
    complete({"If-None-Match": '"bad"'}, b"ghi")[1]()
    complete({"If-Match": "*"}, b"jkl")[1]()
    assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"jkl"
    assert etag2 != etag
    S3.delete_object(Bucket=B, Key=key)


def test_long_keys():
    """Keys up to S3's 1,024 bytes: PUT, GET, in listings in order (past the
    node LMDB's 491-byte key limit), with a delimiter, multipart uploads
    listed; 1,025 bytes is KeyTooLongError."""
    S3 = gt.S3
    base = "long/" + "k" * 480
    keys = sorted([base + s for s in ("", "a", "b" * 20, "b" * 20 + "/x", "c" * 539)] +
                  ["long/" + "z" * 1019, "long/" + "k" * 300])
    assert max(len(k) for k in keys) == 1024
    for i, k in enumerate(keys):
        S3.put_object(Bucket=B, Key=k, Body=str(i).encode())
    for i, k in enumerate(keys):
        assert S3.get_object(Bucket=B, Key=k)["Body"].read() == str(i).encode()
    got = [o["Key"] for o in S3.list_objects_v2(Bucket=B, Prefix="long/")["Contents"]]
    assert got == keys, [len(k) for k in got]
    # paged one by one, from start-after in the middle of the long keys
    pages, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = S3.list_objects_v2(Bucket=B, Prefix="long/", MaxKeys=1, **kw)
        pages += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert pages == keys
    r = S3.list_objects_v2(Bucket=B, Prefix=base, StartAfter=base + "a", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == [base + "b" * 20, base + "c" * 539], r
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [base + "b" * 20 + "/"], r
    up = S3.create_multipart_upload(Bucket=B, Key=keys[-1])["UploadId"]
    ups = S3.list_multipart_uploads(Bucket=B, Prefix="long/")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [(keys[-1], up)], ups
    S3.abort_multipart_upload(Bucket=B, Key=keys[-1], UploadId=up)
    assert err_code(lambda: S3.put_object(Bucket=B, Key="k" * 1025, Body=b"x")) == \
        ("KeyTooLongError", 400)
    S3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": k} for k in keys]})
    assert S3.list_objects_v2(Bucket=B, Prefix="long/")["KeyCount"] == 0


def test_object_attributes():
    """GetObjectAttributes: ETag (unquoted), size, storage class, the stored
    checksum, a multipart object's parts paged by MaxParts and
    PartNumberMarker; a simple object has no ObjectParts."""
    import base64
    import hashlib
    S3 = gt.S3
    attrs = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    body = b"A" * 1024
    ck = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = S3.put_object(Bucket=B, Key="attrs", Body=body, StorageClass="STANDARD_IA",
                      ChecksumSHA256=ck)
    a = S3.get_object_attributes(Bucket=B, Key="attrs", ObjectAttributes=attrs)
    assert a["ETag"] == r["ETag"].strip('"') and a["ObjectSize"] == 1024, a
    assert a["StorageClass"] == "STANDARD_IA" and "ObjectParts" not in a, a
    assert a["Checksum"]["ChecksumSHA256"] == ck, a
    # two checksums: InvalidDigest (the refused digest state is freed: LSan)
    c = with_headers(gt.C.client(), "PutObject", {"x-amz-checksum-crc32": "AAAAAA=="})
    assert err_code(lambda: c.put_object(Bucket=B, Key="attrs2", Body=body,
                                         ChecksumSHA256=ck))[1] == 400
    assert "Checksum" not in S3.get_object_attributes(
        Bucket=B, Key="attrs", ObjectAttributes=["ObjectSize"]), a
    parts = {n: gt.data_of(5 * gt.MiB if n < 4 else 1000, 60 + n) for n in (1, 2, 3, 4)}
    up = S3.create_multipart_upload(Bucket=B, Key="attrs-mp")["UploadId"]
    done = [{"PartNumber": n, "ETag": S3.upload_part(Bucket=B, Key="attrs-mp", UploadId=up,
                                                     PartNumber=n, Body=p)["ETag"]}
            for n, p in parts.items()]
    etag = S3.complete_multipart_upload(Bucket=B, Key="attrs-mp", UploadId=up,
                                        MultipartUpload={"Parts": done})["ETag"]
    a = S3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=attrs)
    assert a["ETag"] == etag.strip('"') and a["StorageClass"] == "STANDARD", a
    assert a["ObjectSize"] == 3 * 5 * gt.MiB + 1000, a
    op = a["ObjectParts"]
    assert op["TotalPartsCount"] == 4 and not op["IsTruncated"], op
    assert [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == \
        [(n, len(p)) for n, p in parts.items()], op
    a = S3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=attrs,
                                 MaxParts=2, PartNumberMarker=1)
    op = a["ObjectParts"]
    assert [p["PartNumber"] for p in op["Parts"]] == [2, 3], op
    assert op["IsTruncated"] and op["NextPartNumberMarker"] == 3, op
    assert op["PartNumberMarker"] == 1 and op["MaxParts"] == 2, op
    assert err_code(lambda: S3.get_object_attributes(
        Bucket=B, Key="nope", ObjectAttributes=attrs)) == ("NoSuchKey", 404)
    assert err_code(lambda: S3.get_object_attributes(
        Bucket=B, Key="attrs", ObjectAttributes=["Bogus"]))[1] == 400
    S3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "attrs"}, {"Key": "attrs-mp"}]})


def test_complete_retry_and_v1_prefix():
    """A Complete retried after it succeeded answers the same result while
    the object is that upload's; NoSuchUpload once it was replaced. A v1
    listing's Prefix is answered as given, even with encoding-type=url."""
    S3 = gt.S3
    # The retry races the first Complete's cleanup: whichever way it lands
    # (parts listing still there or already dropped), the object keeps its
    # parts. Several rounds, as one lands either way depending on timing.
    for i in range(8):
        key = f"recomplete-{i}"
        up = S3.create_multipart_upload(Bucket=B, Key=key)["UploadId"]
        e = S3.upload_part(Bucket=B, Key=key, UploadId=up, PartNumber=1, Body=b"x")["ETag"]
        mp = {"Parts": [{"PartNumber": 1, "ETag": e}]}
        first = S3.complete_multipart_upload(Bucket=B, Key=key, UploadId=up, MultipartUpload=mp)
        again = S3.complete_multipart_upload(Bucket=B, Key=key, UploadId=up, MultipartUpload=mp)
        assert first["ETag"] == again["ETag"] and again["Key"] == key, (first, again)
        time.sleep(0.2)  # the cleanups (and any wrongly collected part) have run
        assert S3.get_object(Bucket=B, Key=key)["Body"].read() == b"x", key
        if i < 7:
            S3.delete_object(Bucket=B, Key=key)
    S3.put_object(Bucket=B, Key=key, Body=b"y")
    assert err_code(lambda: S3.complete_multipart_upload(
        Bucket=B, Key=key, UploadId=up, MultipartUpload=mp)) == ("NoSuchUpload", 404)
    S3.delete_object(Bucket=B, Key=key)
    r = S3.list_objects(Bucket=B, Prefix="\n")
    assert r["Prefix"] == "\n" and "Contents" not in r, r
    # v2 encodes it (Debian's botocore 1.29 does not decode it: raw check)
    st, body = http("GET", S3.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": B, "Prefix": "\n", "EncodingType": "url"}))
    assert st == 200 and b"<Prefix>%0A</Prefix>" in body, body


def signed(method, path, body=b"", headers=None):
    """(status, body) of a SigV4-signed request sent as is (for what
    Debian's botocore 1.29 cannot express), with extra headers."""
    import base64
    import hashlib
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=gt.C.url + path, data=body, headers={
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        **(headers or {})})
    S3SigV4Auth(Credentials("STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"),
                "s3", "us-east-1").add_auth(req)
    return http(method, gt.C.url + path, dict(req.headers.items()), body)


def test_delete_objects_conditions():
    """DeleteObjects with per-key ETag, Size and LastModifiedTime: a key
    whose condition fails is a PreconditionFailed error and stays."""
    S3 = gt.S3
    etag = S3.put_object(Bucket=B, Key="mdc", Body=b"12345")["ETag"]
    mtime = S3.head_object(Bucket=B, Key="mdc")["LastModified"]

    def delete(cond):
        xml = "<Delete><Object><Key>mdc</Key>%s</Object></Delete>" % "".join(
            f"<{k}>{v}</{k}>" for k, v in cond.items())
        st, body = signed("POST", f"/{B}?delete", xml.encode())
        assert st == 200, (st, body)
        return body

    for cond in ({"ETag": "&quot;bad&quot;"}, {"Size": 9999},
                 {"LastModifiedTime": "2015-01-01T00:00:00.000Z"},
                 {"LastModifiedTime": "Thu, 01 Jan 2015 00:00:00 GMT"}):   # botocore's
        body = delete(cond)
        assert b"<Code>PreconditionFailed</Code>" in body and b"<Deleted>" not in body, body
    assert S3.get_object(Bucket=B, Key="mdc")["Body"].read() == b"12345"
    body = delete({"ETag": etag.replace('"', "&quot;"), "Size": 5,
                   "LastModifiedTime": mtime.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    assert b"<Deleted><Key>mdc</Key></Deleted>" in body and b"<Error>" not in body, body
    assert err_code(lambda: S3.head_object(Bucket=B, Key="mdc"))[1] == 404
    assert b"<Code>MalformedXML</Code>" in signed("POST", f"/{B}?delete", b"<Delete><Object>"
                                                  b"<Key>mdc</Key><Size>1</Size><Size>2</Size>"
                                                  b"</Object></Delete>")[1]

def test_list_buckets_paged():
    """ListBuckets with max-buckets, continuation-token and prefix (raw:
    Debian's botocore 1.29 has none of them)."""
    import re
    S3 = gt.S3
    names = ["lbpage-a", "lbpage-b", "lbpage-c"]
    for n in names:
        S3.create_bucket(Bucket=n)

    def page(q):
        st, body = signed("GET", "/?" + q)
        assert st == 200, (st, body)
        return (re.findall(rb"<Name>([^<]*)</Name>", body),
                re.search(rb"<ContinuationToken>([^<]*)</ContinuationToken>", body))

    got, tok = page("max-buckets=2&prefix=lbpage-")
    assert got == [b"lbpage-a", b"lbpage-b"] and tok, (got, tok)
    got, tok2 = page("continuation-token=%s&max-buckets=2&prefix=lbpage-" % tok[1].decode())
    assert got == [b"lbpage-c"] and not tok2, (got, tok2)
    got, tok = page("max-buckets=3&prefix=lbpage-")
    assert got == [n.encode() for n in names] and not tok, (got, tok)
    assert B.encode() in page("")[0]
    for bad in ("max-buckets=0", "max-buckets=x", "continuation-token=zz"):
        assert signed("GET", "/?" + bad)[0] == 400, bad
    for n in names:
        S3.delete_bucket(Bucket=n)


def b64(d):
    import base64
    return base64.b64encode(d).decode()


def mpu_checksum(key, alg, ctype, parts, ck_of, whole):
    """One upload with ChecksumAlgorithm alg (and x-amz-checksum-type ctype
    unless None), parts sent with their checksum headers (ck_of(data): the
    base64 checksum). Raw requests where Debian's botocore 1.29 knows
    neither CRC64NVME nor ChecksumType. Checks CreateMultipartUpload's
    answer, ListParts, Complete (a wrong part checksum: InvalidPart; a wrong
    object checksum: BadDigest; another type: InvalidRequest; the right ones
    accepted, a retry answers the same), HEAD/GET with and without
    x-amz-checksum-mode, a part's checksum on GET ?partNumber, none on a
    range, GetObjectAttributes. whole: the object's expected value."""
    import re
    S3 = gt.S3
    hdr = "x-amz-checksum-" + alg.lower()
    field = "Checksum" + alg
    part_ck = [ck_of(x) for x in parts]
    h = {"x-amz-checksum-algorithm": alg}
    if ctype:
        h["x-amz-checksum-type"] = ctype
    r = with_headers(gt.C.client(), "CreateMultipartUpload", h) \
        .create_multipart_upload(Bucket=B, Key=key)
    rh = r["ResponseMetadata"]["HTTPHeaders"]
    want_type = ctype or ("FULL_OBJECT" if alg == "CRC64NVME" else "COMPOSITE")
    assert rh.get("x-amz-checksum-algorithm") == alg, rh
    assert rh.get("x-amz-checksum-type") == want_type, rh
    up = r["UploadId"]
    etags = []
    for n, (body, ck) in enumerate(zip(parts, part_ck), 1):
        r = with_headers(gt.C.client(), "UploadPart", {hdr: ck}).upload_part(
            Bucket=B, Key=key, UploadId=up, PartNumber=n, Body=body)
        assert r["ResponseMetadata"]["HTTPHeaders"].get(hdr) == ck, r
        etags.append(r["ETag"])
    st, xml = signed("GET", f"/{B}/{key}?uploadId={up}")
    assert st == 200 and f"<ChecksumAlgorithm>{alg}</ChecksumAlgorithm>".encode() in xml, xml
    assert f"<ChecksumType>{want_type}</ChecksumType>".encode() in xml, xml
    for ck in part_ck:
        assert f"<{field}>{ck}</{field}>".encode() in xml, xml

    def complete(cks, headers):
        xml = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
            "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>%s</Part>" % (
                n, e.replace('"', "&quot;"), f"<{field}>{c}</{field}>" if c else "")
            for n, (e, c) in enumerate(zip(etags, cks), 1))
        return signed("POST", f"/{B}/{key}?uploadId={up}", xml.encode(), headers)

    def code(res):
        m = re.search(rb"<Code>([^<]*)</Code>", res[1])
        return (m[1].decode() if m else None), res[0]

    bad = part_ck[:-1] + [ck_of(b"other")]
    assert code(complete(bad, {})) == ("InvalidPart", 400)
    assert code(complete(part_ck, {hdr: "bad"})) == ("BadDigest", 400)
    assert code(complete(part_ck, {hdr: ck_of(b"other")})) == ("BadDigest", 400)
    other = "COMPOSITE" if want_type == "FULL_OBJECT" else "FULL_OBJECT"
    assert code(complete(part_ck, {"x-amz-checksum-type": other})) == ("InvalidRequest", 400)
    result = f"<{field}>{whole}</{field}><ChecksumType>{want_type}</ChecksumType>".encode()
    st, xml = complete(part_ck, {hdr: whole, "x-amz-checksum-type": want_type})
    assert st == 200 and result in xml, (st, xml)
    st, xml = complete([None] * len(parts), {})      # a retry: the same answer
    assert st == 200 and result in xml, (st, xml)
    h = S3.head_object(Bucket=B, Key=key)["ResponseMetadata"]["HTTPHeaders"]
    assert hdr not in h and "x-amz-checksum-type" not in h, h
    mode = {"x-amz-checksum-mode": "ENABLED"}
    h = with_headers(gt.C.client(), "HeadObject", mode).head_object(Bucket=B, Key=key)
    h = h["ResponseMetadata"]["HTTPHeaders"]
    assert h.get(hdr) == whole and h.get("x-amz-checksum-type") == want_type, h
    for n, ck in enumerate(part_ck, 1):
        g = with_headers(gt.C.client(), "GetObject", mode).get_object(
            Bucket=B, Key=key, PartNumber=n)
        assert g["Body"].read() == parts[n - 1]
        g = g["ResponseMetadata"]["HTTPHeaders"]
        assert g.get(hdr) == ck and g.get("x-amz-checksum-type") == want_type, g
    g = with_headers(gt.C.client(), "GetObject", mode).get_object(Bucket=B, Key=key,
                                                                  Range="bytes=0-9")
    assert hdr not in g["ResponseMetadata"]["HTTPHeaders"], g
    st, xml = signed("GET", f"/{B}/{key}?attributes",
                     headers={"x-amz-object-attributes": "Checksum,ObjectParts"})
    assert st == 200 and result in xml, (st, xml)
    assert re.findall(f"<{field}>([^<]*)</{field}>".encode(), xml) == \
        [whole.encode()] + [c.encode() for c in part_ck], xml
    S3.delete_object(Bucket=B, Key=key)


def test_multipart_checksums():
    """Multipart uploads with checksums (current SDKs): COMPOSITE SHA-256
    (the s3-tests' 1 KiB known answer, then 2 parts) and CRC32, FULL_OBJECT
    CRC32 and CRC32C (combined CRCs), CRC64NVME (FULL_OBJECT by default);
    what does not fit the upload is refused."""
    import hashlib
    import zlib

    def sha(x):
        return hashlib.sha256(x).digest()

    def crc32(x):
        return zlib.crc32(x).to_bytes(4, "big")

    def crc32c(x):
        # Castagnoli, bitwise: only small inputs here
        c = 0xffffffff
        for b in x:
            c ^= b
            for _ in range(8):
                c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        return (c ^ 0xffffffff).to_bytes(4, "big")

    one = b"A" * 1024
    assert b64(sha(one)) == "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0="
    mpu_checksum("ck-sha1k", "SHA256", None, [one], lambda x: b64(sha(x)),
                 "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1")
    p = [gt.data_of(5 * gt.MiB, 71), gt.data_of(1000, 72)]
    mpu_checksum("ck-sha", "SHA256", "COMPOSITE", p, lambda x: b64(sha(x)),
                 b64(sha(sha(p[0]) + sha(p[1]))) + "-2")
    mpu_checksum("ck-crc32", "CRC32", "FULL_OBJECT", p, lambda x: b64(crc32(x)),
                 b64(crc32(p[0] + p[1])))
    mpu_checksum("ck-crc32-comp", "CRC32", None, p, lambda x: b64(crc32(x)),
                 b64(crc32(crc32(p[0]) + crc32(p[1]))) + "-2")
    mpu_checksum("ck-crc64", "CRC64NVME", None, p, lambda x: b64(crc64nvme(x)),
                 b64(crc64nvme(p[0] + p[1])))
    # CRC32C: small parts (the last may be small; one part only then), and
    # the s3-tests' 3 x 5 MiB known answers
    mpu_checksum("ck-crc32c", "CRC32C", "FULL_OBJECT", [p[1]], lambda x: b64(crc32c(x)),
                 b64(crc32c(p[1])))
    kat = {b"A" * (5 * gt.MiB): "MDaLrw==", b"B" * (5 * gt.MiB): "TH4EZg==",
           b"C" * (5 * gt.MiB): "Z7mBIQ==", b"other": b64(crc32c(b"other"))}
    mpu_checksum("ck-crc32c3", "CRC32C", "FULL_OBJECT", list(kat)[:3], kat.get, "xU+Krw==")
    # UploadPartCopy computes the upload's algorithm over what it copies
    # (a range of an EC source, then a whole inline one)
    src = gt.data_of(5 * gt.MiB + 100, 73)
    gt.S3.put_object(Bucket=B, Key="ck-src", Body=src)
    gt.S3.put_object(Bucket=B, Key="ck-src2", Body=p[1])
    for alg, ctype, f, whole in (
            ("SHA256", "COMPOSITE", lambda x: b64(sha(x)),
             lambda a, b: b64(sha(sha(a) + sha(b))) + "-2"),
            ("CRC32", "FULL_OBJECT", lambda x: b64(crc32(x)),
             lambda a, b: b64(crc32(a + b)))):
        c = with_headers(gt.C.client(), "CreateMultipartUpload",
                         {"x-amz-checksum-algorithm": alg, "x-amz-checksum-type": ctype})
        up = c.create_multipart_upload(Bucket=B, Key="ck-copy")["UploadId"]
        first = src[3:3 + 5 * gt.MiB]
        done = []
        for n, (key, rng, data) in enumerate(((
                "ck-src", "bytes=3-%d" % (2 + 5 * gt.MiB), first),
                ("ck-src2", None, p[1])), 1):
            st, xml = signed("PUT", f"/{B}/ck-copy?partNumber={n}&uploadId={up}",
                             headers={"x-amz-copy-source": f"/{B}/{key}",
                                      **({"x-amz-copy-source-range": rng} if rng else {})})
            assert st == 200 and f"<Checksum{alg}>{f(data)}</Checksum{alg}>".encode() in xml, xml
            etag = xml.split(b"<ETag>")[1].split(b"</ETag>")[0].decode().replace("&quot;", '"')
            done.append({"PartNumber": n, "ETag": etag})
        gt.S3.complete_multipart_upload(Bucket=B, Key="ck-copy", UploadId=up,
                                        MultipartUpload={"Parts": done})
        h = with_headers(gt.C.client(), "HeadObject", {"x-amz-checksum-mode": "ENABLED"}) \
            .head_object(Bucket=B, Key="ck-copy")["ResponseMetadata"]["HTTPHeaders"]
        assert h.get("x-amz-checksum-" + alg.lower()) == whole(first, p[1]), (alg, h)
    for k in ("ck-src", "ck-src2", "ck-copy"):
        gt.S3.delete_object(Bucket=B, Key=k)
    # what does not fit: FULL_OBJECT SHA, COMPOSITE CRC64NVME, a type alone
    for h in ({"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT"},
              {"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"},
              {"x-amz-checksum-type": "COMPOSITE"}):
        c = with_headers(gt.C.client(), "CreateMultipartUpload", h)
        assert err_code(lambda: c.create_multipart_upload(Bucket=B, Key="ck-x")) == \
            ("InvalidRequest", 400), h
    for h in ({"x-amz-checksum-algorithm": "MD5"}, {"x-amz-checksum-algorithm": "CRC32",
                                                   "x-amz-checksum-type": "OTHER"}):
        c = with_headers(gt.C.client(), "CreateMultipartUpload", h)
        assert err_code(lambda: c.create_multipart_upload(Bucket=B, Key="ck-x"))[1] == 400, h
    # a SHA-256 upload takes no part without, or with another, checksum
    up = gt.S3.create_multipart_upload(Bucket=B, Key="ck-x",
                                       ChecksumAlgorithm="SHA256")["UploadId"]
    assert err_code(lambda: gt.S3.upload_part(Bucket=B, Key="ck-x", UploadId=up,
                                              PartNumber=1, Body=one)) == ("InvalidRequest", 400)
    c = with_headers(gt.C.client(), "UploadPart", {"x-amz-checksum-crc32": b64(crc32(one))})
    assert err_code(lambda: c.upload_part(Bucket=B, Key="ck-x", UploadId=up, PartNumber=1,
                                          Body=one)) == ("InvalidRequest", 400)
    gt.S3.abort_multipart_upload(Bucket=B, Key="ck-x", UploadId=up)


def test_object_tagging():
    """Object tags: PutObjectTagging / GetObjectTagging / DeleteObjectTagging
    on EC, inline and multipart objects (the head is rewritten: data,
    ETag and Last-Modified stay), x-amz-tagging on PUT, CreateMultipartUpload
    and CopyObject (x-amz-tagging-directive), x-amz-tagging-count on
    GET/HEAD, the limits (InvalidTag), tags gone with the object."""
    S3 = gt.S3

    def tags(key):
        return S3.get_object_tagging(Bucket=B, Key=key)["TagSet"]

    def count(key):
        return S3.head_object(Bucket=B, Key=key)["ResponseMetadata"]["HTTPHeaders"] \
            .get("x-amz-tagging-count")

    ten = [{"Key": str(i) * 128, "Value": "v" * 256} for i in range(10)]
    bodies = {"tag-ec": gt.data_of(3 * gt.MiB + 5, 81), "tag-inline": b"small"}
    for key, body in bodies.items():
        S3.put_object(Bucket=B, Key=key, Body=body)
        h0 = S3.head_object(Bucket=B, Key=key)
        assert tags(key) == [] and count(key) is None
        S3.put_object_tagging(Bucket=B, Key=key, Tagging={"TagSet": ten})
        assert tags(key) == ten and count(key) == "10"
        t2 = [{"Key": "k & é", "Value": "a=b/c"}]
        S3.put_object_tagging(Bucket=B, Key=key, Tagging={"TagSet": t2})
        assert tags(key) == t2
        g = S3.get_object(Bucket=B, Key=key)
        assert g["Body"].read() == body and g["TagCount"] == 1, g
        assert g["ETag"] == h0["ETag"] and g["LastModified"] == h0["LastModified"], g
        for bad in (ten + [{"Key": "x", "Value": ""}], [{"Key": "k" * 129, "Value": ""}],
                    [{"Key": "k", "Value": "v" * 257}],
                    [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]):
            assert err_code(lambda: S3.put_object_tagging(
                Bucket=B, Key=key, Tagging={"TagSet": bad})) == ("InvalidTag", 400)
        assert tags(key) == t2
        r = S3.delete_object_tagging(Bucket=B, Key=key)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert tags(key) == [] and count(key) is None
        assert S3.get_object(Bucket=B, Key=key)["Body"].read() == body
    # x-amz-tagging on PUT (s3-tests' form), replaced by a PUT without
    S3.put_object(Bucket=B, Key="tag-inline", Body=b"x", Tagging="foo=bar&bar")
    # (listed in key order, as RGW and the s3-tests expect)
    assert tags("tag-inline") == [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]
    assert err_code(lambda: S3.put_object(Bucket=B, Key="tag-x", Body=b"x",
                                          Tagging="a=1&a=2")) == ("InvalidTag", 400)
    # CopyObject: the source's tags by default, the request's with REPLACE
    S3.copy_object(Bucket=B, Key="tag-copy", CopySource={"Bucket": B, "Key": "tag-inline"})
    assert len(tags("tag-copy")) == 2
    S3.copy_object(Bucket=B, Key="tag-copy", CopySource={"Bucket": B, "Key": "tag-inline"},
                   Tagging="c=3", TaggingDirective="REPLACE")
    assert tags("tag-copy") == [{"Key": "c", "Value": "3"}]
    # multipart: tags from CreateMultipartUpload; a rewrite keeps the manifest
    up = S3.create_multipart_upload(Bucket=B, Key="tag-mp", Tagging="Hello=World&foo=bar")
    p = [gt.data_of(5 * gt.MiB, 82), b"end"]
    done = [{"PartNumber": n, "ETag": S3.upload_part(Bucket=B, Key="tag-mp",
                                                     UploadId=up["UploadId"], PartNumber=n,
                                                     Body=d)["ETag"]}
            for n, d in enumerate(p, 1)]
    S3.complete_multipart_upload(Bucket=B, Key="tag-mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    assert tags("tag-mp") == [{"Key": "Hello", "Value": "World"}, {"Key": "foo", "Value": "bar"}]
    S3.put_object_tagging(Bucket=B, Key="tag-mp", Tagging={"TagSet": [{"Key": "k", "Value": ""}]})
    assert S3.get_object(Bucket=B, Key="tag-mp")["Body"].read() == p[0] + p[1]
    assert S3.get_object(Bucket=B, Key="tag-mp", PartNumber=2)["Body"].read() == p[1]
    assert count("tag-mp") == "1"
    # a PUT after the rewrite still wins; tags go with the object
    S3.put_object(Bucket=B, Key="tag-mp", Body=b"new")
    assert tags("tag-mp") == [] and S3.get_object(Bucket=B, Key="tag-mp")["Body"].read() == b"new"
    for key in ("tag-ec", "tag-inline", "tag-copy", "tag-mp"):
        S3.delete_object(Bucket=B, Key=key)
    assert err_code(lambda: tags("tag-ec")) == ("NoSuchKey", 404)
    assert err_code(lambda: S3.put_object_tagging(
        Bucket=B, Key="tag-ec", Tagging={"TagSet": []})) == ("NoSuchKey", 404)
    # bucket tags: in the bucket's settings record, beside its tier policy
    # and lifecycle, which they leave alone; gone with the bucket
    S3.create_bucket(Bucket="tagbucket")
    assert err_code(lambda: S3.get_bucket_tagging(Bucket="tagbucket")) == ("NoSuchTagSet", 404)
    lc = {"Rules": [{"ID": "r", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
                     "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]}]}
    S3.put_bucket_lifecycle_configuration(Bucket="tagbucket", LifecycleConfiguration=lc)
    t = [{"Key": "Hello", "Value": "World"}, {"Key": "a b", "Value": ""}]
    S3.put_bucket_tagging(Bucket="tagbucket", Tagging={"TagSet": t})
    assert S3.get_bucket_tagging(Bucket="tagbucket")["TagSet"] == t
    assert err_code(lambda: S3.put_bucket_tagging(Bucket="tagbucket", Tagging={
        "TagSet": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]})) == ("InvalidTag", 400)
    assert S3.get_bucket_lifecycle_configuration(Bucket="tagbucket")["Rules"][0]["ID"] == "r"
    S3.delete_bucket_lifecycle(Bucket="tagbucket")
    assert S3.get_bucket_tagging(Bucket="tagbucket")["TagSet"] == t
    r = S3.delete_bucket_tagging(Bucket="tagbucket")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err_code(lambda: S3.get_bucket_tagging(Bucket="tagbucket")) == ("NoSuchTagSet", 404)
    S3.put_bucket_tagging(Bucket="tagbucket", Tagging={"TagSet": t})
    S3.delete_bucket(Bucket="tagbucket")
    S3.create_bucket(Bucket="tagbucket")
    assert err_code(lambda: S3.get_bucket_tagging(Bucket="tagbucket")) == ("NoSuchTagSet", 404)
    S3.delete_bucket(Bucket="tagbucket")


def test_lifecycle_errors():
    """PutBucketLifecycleConfiguration's InvalidArgument cases, answered
    before the NotImplemented of the Expiration and Date rules they use."""
    S3 = gt.S3
    S3.create_bucket(Bucket="lcerr")

    def put(*rules):
        return err_code(lambda: S3.put_bucket_lifecycle_configuration(
            Bucket="lcerr", LifecycleConfiguration={"Rules": list(rules)}))

    def rule(rid, **action):
        return dict(ID=rid, Filter={"Prefix": rid + "/"}, Status="Enabled", **action)
    utc = datetime.timezone.utc
    noon = datetime.datetime(2030, 1, 1, 12, tzinfo=utc)
    midnight = datetime.datetime(2030, 1, 1, tzinfo=utc)
    days = {"Days": 1}
    assert put(rule("a" * 256, Expiration=days)) == ("InvalidArgument", 400)
    assert put(rule("r", Expiration=days), rule("r", Expiration={"Days": 2})) == \
        ("InvalidArgument", 400)
    assert put(rule("r", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
               rule("r", Transitions=[{"Days": 60, "StorageClass": "GLACIER"}])) == \
        ("InvalidArgument", 400)
    assert put(rule("r", Expiration={"Date": noon})) == ("InvalidArgument", 400)
    assert put(rule("r", Expiration={"Date": midnight},
                    Transitions=[{"Date": noon, "StorageClass": "GLACIER"}])) == \
        ("InvalidArgument", 400)
    # well formed: what the gateway does not do is still NotImplemented
    assert put(rule("a" * 255, Expiration={"Date": midnight})) == ("NotImplemented", 501)
    assert put(rule("r", Transitions=[{"Date": midnight, "StorageClass": "GLACIER"}])) == \
        ("NotImplemented", 501)
    assert err_code(lambda: S3.get_bucket_lifecycle_configuration(Bucket="lcerr")) == \
        ("NoSuchLifecycleConfiguration", 404)
    S3.put_bucket_lifecycle_configuration(Bucket="lcerr", LifecycleConfiguration={
        "Rules": [rule("a" * 255, Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}])]})
    assert S3.get_bucket_lifecycle_configuration(Bucket="lcerr")["Rules"][0]["ID"] == "a" * 255
    S3.delete_bucket_lifecycle(Bucket="lcerr")
    S3.delete_bucket(Bucket="lcerr")


def test_list_object_versions():
    """ListObjectVersions of a bucket (never versioned here): every object
    is its one version, "null" and latest, listed as ListObjects lists it
    (prefix, delimiter, max-keys pages, key-marker, url encoding); a
    version-id-marker other than "null", or without a key-marker, is
    InvalidArgument; ?versions with another method is still refused, not
    taken for a bucket operation."""
    S3 = gt.S3
    S3.create_bucket(Bucket="lov")
    keys = ["a/1", "a/2", "b/1", "c", "d e+%"]
    for i, k in enumerate(keys):
        S3.put_object(Bucket="lov", Key=k, Body=b"v" * (i * 40000 + 1))
    plain = {o["Key"]: o for o in S3.list_objects_v2(Bucket="lov")["Contents"]}
    r = S3.list_object_versions(Bucket="lov")
    assert [v["Key"] for v in r["Versions"]] == keys and not r["IsTruncated"], r
    for v in r["Versions"]:
        o = plain[v["Key"]]
        assert v["VersionId"] == "null" and v["IsLatest"] is True, v
        assert (v["ETag"], v["Size"], v["LastModified"]) == \
            (o["ETag"], o["Size"], o["LastModified"]), (v, o)
        assert v["Owner"]["ID"], v
    assert not r.get("DeleteMarkers")
    r = S3.list_object_versions(Bucket="lov", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"], r
    assert [v["Key"] for v in r["Versions"]] == ["c", "d e+%"], r
    r = S3.list_object_versions(Bucket="lov", Prefix="a/", KeyMarker="a/1", VersionIdMarker="null")
    assert [v["Key"] for v in r["Versions"]] == ["a/2"], r
    pages = list(S3.get_paginator("list_object_versions").paginate(
        Bucket="lov", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3 and pages[0]["NextKeyMarker"] == "a/2" and \
        pages[0]["NextVersionIdMarker"] == "null", pages[0]
    assert [v["Key"] for p in pages for v in p["Versions"]] == keys
    # s3-tests' cleanup: the listed versions, deleted by DeleteObjects
    for bad in (dict(KeyMarker="a/1", VersionIdMarker="3HL4kqtJvjVBH40Nrjfkd"),
                dict(VersionIdMarker="null")):
        assert err_code(lambda: S3.list_object_versions(Bucket="lov", **bad)) == \
            ("InvalidArgument", 400), bad
    assert signed("DELETE", "/lov?versions")[0] == 501
    assert signed("PUT", "/lov?versions")[0] == 501
    vs = S3.list_object_versions(Bucket="lov")["Versions"]
    S3.delete_objects(Bucket="lov", Delete={"Objects": [
        {"Key": v["Key"], "VersionId": v["VersionId"]} for v in vs]})
    assert "Versions" not in S3.list_object_versions(Bucket="lov")
    S3.delete_bucket(Bucket="lov")


def test_sse_refused():
    """Server-side encryption (SSE-S3, SSE-KMS, SSE-C, an SSE-C copy
    source) is refused with 501: an object stored as sent must not pass for
    encrypted (an SSE-C one would read back without its key). Nothing is
    written."""
    S3 = gt.S3
    S3.create_bucket(Bucket="sse")
    S3.put_object(Bucket="sse", Key="plain", Body=b"p")
    key = b"k" * 32
    ssec = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=key.decode())
    for args in (dict(ServerSideEncryption="AES256"),
                 dict(ServerSideEncryption="aws:kms", SSEKMSKeyId="k1"), ssec):
        assert err_code(lambda: S3.put_object(Bucket="sse", Key="enc", Body=b"x" * 70000,
                                              **args)) == ("NotImplemented", 501), args
        assert err_code(lambda: S3.create_multipart_upload(Bucket="sse", Key="enc",
                                                           **args)) == ("NotImplemented", 501)
        assert err_code(lambda: S3.copy_object(Bucket="sse", Key="enc", CopySource="sse/plain",
                                               **args)) == ("NotImplemented", 501)
    assert err_code(lambda: S3.copy_object(
        Bucket="sse", Key="enc", CopySource="sse/plain", CopySourceSSECustomerAlgorithm="AES256",
        CopySourceSSECustomerKey=key.decode())) == ("NotImplemented", 501)
    assert err_code(lambda: S3.get_object(Bucket="sse", Key="plain", **ssec)) == \
        ("NotImplemented", 501)
    assert err_code(lambda: S3.head_object(Bucket="sse", Key="enc")) == ("404", 404)
    assert not S3.list_multipart_uploads(Bucket="sse").get("Uploads")
    assert S3.get_object(Bucket="sse", Key="plain")["Body"].read() == b"p"
    S3.delete_object(Bucket="sse", Key="plain")
    S3.delete_bucket(Bucket="sse")


gt.TESTS = [test_list_object_versions, test_sse_refused, test_chunked_transfer_encoding, test_acl_owner_enforced, test_conditional_put, test_conditional_delete, test_buckets_extra,
            test_options_presigned_encoding, test_crc64nvme, test_complete_conditional,
            test_long_keys, test_object_attributes, test_complete_retry_and_v1_prefix,
            test_delete_objects_conditions, test_list_buckets_paged,
            test_multipart_checksums, test_object_tagging, test_lifecycle_errors]

if __name__ == "__main__":
    sys.exit(gt.main())
