#!/usr/bin/python3
"""The S3 response writer (api/s3xml.c) as a client parses it.

strata-s3xml-sample prints the documents; botocore gets each as the
response to the matching call (ListObjectsV2 with and without
encoding-type=url, ListObjects, ListBuckets, an error) and must read back
exactly what was written: keys with XML specials, non-ASCII and, through
URL encoding, a control character.

usage: test-s3xml-botocore.py STRATA_S3XML_SAMPLE     (exit 77: no botocore)
"""
import datetime
import subprocess
import sys

try:
    import botocore.session
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    print("SKIP: python3-botocore is not installed (tools/dev install)")
    sys.exit(77)

KEYS = ["a b/c&d<e>f\"g'h", "\u00fcnicode/\u65e5\u672c.txt",
        "plus+sign=eq%25pct", "ctrl\x01char"]
PREFIXES = ["dir one/", "\u00e9t\u00e9/"]
ETAG = '"fba9dede5f27731c9771645a39863328"'


class Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def client_answering(body, status=200):
    session = botocore.session.get_session()
    c = session.create_client(
        "s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:8480",
        aws_access_key_id="AK", aws_secret_access_key="SK",
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}))

    def before_send(request, **kwargs):
        return AWSResponse(request.url, status,
                           {"Content-Type": "application/xml"}, Raw(body))

    c.meta.events.register("before-send.s3", before_send)
    return c


def doc(tool, name):
    return subprocess.run([tool, name], capture_output=True, check=True).stdout


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok  ", what)


def main():
    tool = sys.argv[1]

    r = client_answering(doc(tool, "list-v2")).list_objects_v2(Bucket="bkt", Delimiter="/")
    check([o["Key"] for o in r["Contents"]] == KEYS, "ListObjectsV2 url-encoded keys decode to the originals")
    check([p["Prefix"] for p in r["CommonPrefixes"]] == PREFIXES, "ListObjectsV2 common prefixes")
    check(r["KeyCount"] == 6 and r["MaxKeys"] == 1000 and r["IsTruncated"], "ListObjectsV2 counts")
    check(r["NextContinuationToken"] == "tok/en+==" and r["StartAfter"] == "a b",
          "ListObjectsV2 token and StartAfter")
    check(r["Delimiter"] == "/" and r["EncodingType"] == "url", "ListObjectsV2 delimiter, encoding type")
    check([o["Size"] for o in r["Contents"]] == [i * 1000000007 for i in range(4)], "sizes beyond 32 bits")
    check(r["Contents"][1]["LastModified"] ==
          datetime.datetime(2009, 10, 12, 17, 50, 30, 1000, tzinfo=datetime.timezone.utc),
          "LastModified with milliseconds")
    check(r["Contents"][0]["ETag"] == ETAG and r["Contents"][0]["StorageClass"] == "STANDARD",
          "ETag and storage class")

    # without EncodingType in the response botocore leaves the text alone
    r = client_answering(doc(tool, "list-v2-plain")).list_objects_v2(Bucket="bkt")
    check([o["Key"] for o in r["Contents"]] == KEYS[:3], "ListObjectsV2 plain XML escaping")

    r = client_answering(doc(tool, "list-v1")).list_objects(Bucket="bkt", Delimiter="/")
    check([o["Key"] for o in r["Contents"]] == KEYS and r["NextMarker"] == "ctrl",
          "ListObjects (v1) keys and NextMarker")

    r = client_answering(doc(tool, "buckets")).list_buckets()
    check([b["Name"] for b in r["Buckets"]] == ["bkt", "other-bucket"], "ListBuckets names")
    check(r["Owner"] == {"ID": "owner-id", "DisplayName": "owner & co"}, "ListBuckets owner")
    check(r["Buckets"][1]["CreationDate"].year == 2023, "ListBuckets CreationDate")

    try:
        client_answering(doc(tool, "error"), 403).get_object(Bucket="bkt", Key="a&b")
        check(False, "error document raises")
    except ClientError as e:
        err = e.response["Error"]
        check(err["Code"] == "SignatureDoesNotMatch", "error Code")
        check(err["Message"].startswith("The request signature we calculated"), "error Message")
        check(err["Resource"] == "/bkt/a&b", "error Resource (escaped and back)")
        # botocore takes the request id from x-amz-request-id, not the body
    return 0


if __name__ == "__main__":
    sys.exit(main())
