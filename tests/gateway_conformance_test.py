#!/usr/bin/python3
"""S3 conformance regressions of strata-gateway: one case per behaviour the
ceph s3-tests suite found missing or wrong (docs/s3-conformance.md), on the
same real cluster as gateway_test.py (its Cluster, clients and runner).

usage: gateway_conformance_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY [TEST...]
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_test as gt  # noqa: E402  (parses the same argv)
from gateway_test import err_code  # noqa: E402

B = gt.BUCKET


def with_headers(client, op, headers):
    """client with extra request headers on op (Debian's botocore 1.29 has no
    IfMatch/IfNoneMatch parameters on PUT and DELETE)."""
    def add(params, **kw):
        params["headers"].update(headers)
    client.meta.events.register(f"before-call.s3.{op}", add)
    return client


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


gt.TESTS = [test_conditional_put, test_conditional_delete]

if __name__ == "__main__":
    sys.exit(gt.main())
