#!/usr/bin/python3
"""Cross-check of the SigV4 verifier against a real client, botocore.

botocore (Debian's python3-botocore) signs a set of S3 requests the way the
AWS CLI and boto3 send them: header-signed over http (payload hashed) and
https (UNSIGNED-PAYLOAD, and aws-chunked bodies with a trailing checksum),
and presigned URLs. Each request is captured just before it would be sent
and handed to strata-sigv4-check, which must accept it; tampered copies
(path, query, a signed header, the body, the clock, the key) must be refused
with the right S3 error code.

usage: test-sigv4-botocore.py STRATA_SIGV4_CHECK     (exit 77: no botocore)
"""
import base64
import json
import subprocess
import sys
import time
import urllib.parse

try:
    import botocore.session
    from botocore.config import Config
except ImportError:
    print("SKIP: python3-botocore is not installed (tools/dev install)")
    sys.exit(77)

AK = "STRATAEXAMPLEKEY0001"
SK = "s3cr3t/with+chars=AndLength40xxxxxxxxxxx"
REGION = "us-east-1"


class Captured(Exception):
    pass


def capture(endpoint, call):
    """Runs call(client) and returns the request botocore would have sent."""
    session = botocore.session.get_session()
    client = session.create_client(
        "s3", region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id=AK, aws_secret_access_key=SK,
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}))
    got = {}

    def before_send(request, **kwargs):
        got["req"] = request
        raise Captured()

    client.meta.events.register("before-send.s3", before_send)
    try:
        call(client)
    except Captured:
        pass
    req = got["req"]
    body = req.body
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    return describe(req.method, req.url, list(req.headers.items()), body or b"")


def describe(method, url, headers, body):
    parts = urllib.parse.urlsplit(url)
    names = {n.lower() for n, _ in headers}
    headers = [[n, v.decode() if isinstance(v, bytes) else v] for n, v in headers]
    if "host" not in names:      # urllib3 adds it on the wire
        headers.insert(0, ["Host", parts.netloc])
    return {
        "method": method, "path": parts.path, "query": parts.query,
        "headers": headers, "body": base64.b64encode(body).decode(),
        "now": int(time.time()), "access_key": AK, "secret": SK,
        "region": REGION,
    }


def presigned(method_name, params, expires, http_method):
    session = botocore.session.get_session()
    client = session.create_client(
        "s3", region_name=REGION, endpoint_url="http://127.0.0.1:8480",
        aws_access_key_id=AK, aws_secret_access_key=SK,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    url = client.generate_presigned_url(method_name, Params=params,
                                        ExpiresIn=expires, HttpMethod=http_method)
    return describe(http_method, url, [], b"")


ODD_KEY = "dir/\u00fc nicode key+plus=eq&amp(1)~!$'*,;:@.txt"


def requests():
    http = "http://127.0.0.1:8480"
    https = "https://127.0.0.1:8443"
    cases = [
        ("list_buckets", capture(http, lambda c: c.list_buckets())),
        ("put_object odd key", capture(http, lambda c: c.put_object(
            Bucket="bkt", Key=ODD_KEY, Body=b"hello world",
            Metadata={"color": "  dark   blue  "}))),
        ("list_objects_v2", capture(http, lambda c: c.list_objects_v2(
            Bucket="bkt", Prefix="a b/\u00fc", Delimiter="/", MaxKeys=5,
            StartAfter="x~y*z"))),
        ("get_object range", capture(http, lambda c: c.get_object(
            Bucket="bkt", Key="photos/cat.jpg", Range="bytes=0-9"))),
        ("head_object", capture(http, lambda c: c.head_object(
            Bucket="bkt", Key="~/tilde!$'()*"))),
        ("delete_objects", capture(http, lambda c: c.delete_objects(
            Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b c"}],
                                  "Quiet": True}))),
        ("create_multipart_upload", capture(http, lambda c: c.create_multipart_upload(
            Bucket="bkt", Key="big.bin"))),
        ("upload_part", capture(http, lambda c: c.upload_part(
            Bucket="bkt", Key="big.bin", PartNumber=3, UploadId="abc/def+ghi=",
            Body=b"x" * 1000))),
        ("put_object https (unsigned payload)", capture(https, lambda c: c.put_object(
            Bucket="bkt", Key="k", Body=b"data over tls"))),
        ("put_object https aws-chunked crc32 trailer", capture(https, lambda c: c.put_object(
            Bucket="bkt", Key="k", Body=b"chunked body " * 5000,
            ChecksumAlgorithm="CRC32"))),
        ("put_object http sha1 checksum header", capture(http, lambda c: c.put_object(
            Bucket="bkt", Key="k", Body=b"abc", ChecksumAlgorithm="SHA1"))),
        ("presigned get_object", presigned("get_object", {"Bucket": "bkt", "Key": ODD_KEY}, 600, "GET")),
        ("presigned put_object", presigned("put_object", {"Bucket": "bkt", "Key": "up/load"}, 3600, "PUT")),
    ]
    return cases


def tampered(name, r):
    """(description, request, expected verdict) for one signed request."""
    presign = "X-Amz-Signature" in r["query"]
    out = []

    def copy():
        return json.loads(json.dumps(r))

    t = copy()
    t["path"] += "x"
    out.append(("path", t, "SignatureDoesNotMatch"))
    t = copy()
    t["query"] = (t["query"] + "&" if t["query"] else "") + "extra=1"
    out.append(("query", t, "SignatureDoesNotMatch"))
    t = copy()
    t["method"] = "DELETE" if t["method"] != "DELETE" else "GET"
    out.append(("method", t, "SignatureDoesNotMatch"))
    t = copy()
    t["secret"] = SK[:-1] + "y"
    out.append(("secret", t, "SignatureDoesNotMatch"))
    t = copy()
    t["access_key"] = "SOMEONEELSE"
    out.append(("unknown key", t, "InvalidAccessKeyId"))
    if presign:
        t = copy()
        t["now"] += 3601 if "put" in name else 601
        out.append(("expired", t, "Request has expired"))
        t = copy()
        t["query"] = t["query"].replace("X-Amz-Expires=", "X-Amz-Expires=1")
        out.append(("expires changed", t, "SignatureDoesNotMatch"))
    else:
        t = copy()
        t["now"] += 3600
        out.append(("clock skew", t, "RequestTimeTooSkewed"))
        t = copy()
        for h in t["headers"]:
            if h[0].lower() == "host":
                h[1] = "evil.example.com"
        out.append(("host header", t, "SignatureDoesNotMatch"))
        t = copy()
        t["headers"].append(["X-Amz-Meta-Injected", "1"])
        out.append(("unsigned x-amz header", t,
                    "There were headers present in the request which were not signed"))
        body = base64.b64decode(r["body"])
        if body:
            hdrs = {n.lower(): v for n, v in r["headers"]}
            sha = hdrs["x-amz-content-sha256"]
            # flip a payload byte (mid-body: inside the first chunk's data)
            at = len(body) // 2
            t = copy()
            t["body"] = base64.b64encode(body[:at] + bytes([body[at] ^ 1]) +
                                         body[at + 1:]).decode()
            if len(sha) == 64:      # the signed hash is checked first
                verdict = "XAmzContentSHA256Mismatch"
            elif sha.startswith("STREAMING-") or "content-md5" in hdrs or any(
                    h.startswith("x-amz-checksum-") for h in hdrs):
                verdict = "BadDigest"
            else:
                verdict = "OK"      # UNSIGNED-PAYLOAD, no checksum: TLS's job
            out.append(("body", t, verdict))
    return out


def main():
    checker = sys.argv[1]
    lines, expect, names = [], [], []
    for name, r in requests():
        lines.append(json.dumps(r))
        expect.append("OK")
        names.append(name)
        for what, t, verdict in tampered(name, r):
            lines.append(json.dumps(t))
            expect.append(verdict)
            names.append(f"{name} / tampered {what}")
    res = subprocess.run([checker], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, check=True)
    got = res.stdout.splitlines()
    if len(got) != len(expect):
        print(f"FAIL: {len(got)} verdicts for {len(expect)} requests\n{res.stderr}")
        return 1
    bad = 0
    for n, e, g, line in zip(names, expect, got, lines):
        ok = g == e or (e == "OK" and g.startswith("OK"))
        print(f"{'ok  ' if ok else 'FAIL'} {n}: {g}" + ("" if ok else f" (want {e})"))
        if not ok:
            bad += 1
            print("     " + line[:600])
    print(f"{len(expect) - bad}/{len(expect)} as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
