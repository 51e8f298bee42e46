#!/usr/bin/python3
"""Gateway-level listing benchmark: a local cluster (6 storage nodes, one
gateway; gateway_test.py's setup), a bucket filled to N entries through the
gateway's listing service (strata-gw-listfill: no object data — filling 1M
objects through S3 PUTs would take hours here), then over plain HTTP with
SigV4 (botocore signs; no XML parsing in the timings):

  put0      small PUTs/s into the empty bucket (16 client threads)
  first     ListObjectsV2, first 1,000 keys: latency p50/p90/max
  first-lc  the same once the bucket has lifecycle Transition rules (each
            key's class is then decided by its age: docs/tiering.md)
  full      the whole listing by pages of 1,000 (continuation tokens): keys/s
  delim     delimiter "/" (1,000 common prefixes), pages of 1,000
  putN      small PUTs/s into the full bucket (same as put0)

usage: gw-listing.py BUILD_DIR [--keys 1000000] [--shard-max N]
(BUILD_DIR: a Release tree with strata-ring, strata-storaged, strata-gateway,
strata-gw-listfill). Prints the load average with every number.
"""
import argparse
import concurrent.futures
import http.client
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--keys", type=int, default=1000000)
ap.add_argument("--shard-max", type=int, default=2000000)
ap.add_argument("--puts", type=int, default=2000)
args = ap.parse_args()
B = os.path.abspath(args.build)
sys.argv = [sys.argv[0], f"{B}/ring/strata-ring", f"{B}/storage/strata-storaged",
            f"{B}/api/strata-gateway"]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import gateway_test as gt  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

CRED = Credentials("STRATATESTKEY0001", "secretsecretsecretsecretsecret0001")
BUCKET = "benchlist"


def load():
    return open("/proc/loadavg").read().split()[0]


class Raw:
    """One keep-alive connection; SigV4-signed GETs, timed to the last byte."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.port = port

    def get(self, path_query):
        url = f"http://127.0.0.1:{self.port}{path_query}"
        req = AWSRequest(method="GET", url=url,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        SigV4Auth(CRED, "s3", "us-east-1").add_auth(req)
        # XXX a fresh connection per request (its setup is in the timing):
        # the gateway drops a keep-alive connection from http.client after
        # one listing (boto3's pooled connections are fine; not understood).
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.conn.request("GET", path_query, headers=dict(req.headers))
        r = self.conn.getresponse()
        body = r.read()
        self.conn.close()
        if r.status != 200:
            raise RuntimeError(f"{r.status}: {body[:300]}")
        return body


def put_rate(s3, n, tag):
    lat = []
    lock = threading.Lock()

    def one(i):
        t = time.time()
        s3.put_object(Bucket=BUCKET, Key=f"put-{tag}/{i:07d}", Body=b"x" * 4096)
        with lock:
            lat.append(time.time() - t)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(one, range(n)))
    el = time.time() - t0
    lat.sort()
    print(f"{tag}: {n} PUTs of 4 KiB, 16 threads: {n / el:.0f} PUT/s, p50 "
          f"{lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * .99)] * 1000:.1f} ms "
          f"(load {load()})", flush=True)


def first_keys(raw, name, cls):
    """ListObjectsV2 of the first 1,000 keys, 50 times: latency."""
    lat = []
    for _ in range(50):
        t = time.time()
        body = raw.get(f"/{BUCKET}?list-type=2&max-keys=1000")
        lat.append(time.time() - t)
    assert body.count(b"<Key>") == 1000 and body.count(cls) == 1000, body[:600]
    lat.sort()
    print(f"{name}: first 1,000 keys (ListObjectsV2, {len(lat)} runs): p50 "
          f"{statistics.median(lat) * 1000:.1f} ms, p90 {lat[int(len(lat) * .9)] * 1000:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms (load {load()})", flush=True)


def main():
    from urllib.parse import quote
    # The nodes' LMDB map at the daemon's default (the tests' 1G fills up
    # past ~3M entries per node).
    C = gt.Cluster(["--shard-max", str(args.shard_max), "--tier-pass-rate", "1"],
                   node_args=["--index-map-size", "64G"])
    try:
        s3 = C.client(max_pool_connections=32)
        s3.create_bucket(Bucket=BUCKET)
        put_rate(s3, args.puts, "put0")
        t0 = time.time()
        subprocess.run([f"{B}/bench/strata-gw-listfill", "--rings",
                        os.path.join(gt.TMP, "rings"), "--bucket", BUCKET,
                        "--keys", str(args.keys), "--shard-max", str(args.shard_max)],
                       check=True)
        print(f"(fill done, load {load()})", flush=True)
        time.sleep(3)   # the gateway's cached shard map expires
        raw = Raw(C.gw.port)
        raw.get(f"/{BUCKET}?list-type=2&max-keys=1")
        first_keys(raw, "first", b"<StorageClass>STANDARD<")
        # Two rules on every key: the first reached at once (Days 0), the
        # second not (a real day). The gateway's --tier-pass-rate 1 keeps
        # the policy pass this starts (over entries without objects) idle.
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
            {"ID": "ia", "Filter": {"Prefix": ""}, "Status": "Enabled",
             "Transitions": [{"Days": 0, "StorageClass": "STANDARD_IA"}]},
            {"ID": "ir", "Filter": {"Prefix": ""}, "Status": "Enabled",
             "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}]})
        first_keys(raw, "first-lc", b"<StorageClass>STANDARD_IA<")
        for name, extra in (("full", ""), ("delim", "&delimiter=%2F")):
            t0 = time.time()
            token, items, pages = None, 0, 0
            while True:
                q = f"/{BUCKET}?list-type=2&max-keys=1000{extra}"
                if token:
                    q += "&continuation-token=" + quote(token, safe="")
                body = raw.get(q)
                pages += 1
                items += body.count(b"<Key>") + body.count(b"<CommonPrefixes>")
                m = re.search(rb"<NextContinuationToken>([^<]*)<", body)
                if not m:
                    break
                token = m.group(1).decode()
            el = time.time() - t0
            print(f"{name}: {items} items in {pages} pages, {el:.2f} s: {items / el:.0f} "
                  f"items/s (load {load()})", flush=True)
        put_rate(s3, args.puts, "putN")
        print(open(C.gw.logpath).read()[-1500:])
    finally:
        C.stop()


main()
