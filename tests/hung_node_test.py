#!/usr/bin/python3
"""Hung storage node (issue 7, test 2) on durability_test.py's live cluster:
6 real storage nodes with their repair daemons, the S3 gateway (read
deadline 500 ms, hung after 1.5 s of silence, down period 1 s) and boto3
clients.

usage: hung_node_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY STRATA_REPAIRD

  sigstop   GETs and PUTs run from 4 threads against small (replicated) and
            EC objects; after a healthy period one storage node is stopped
            with SIGSTOP (hung: its sockets accept, it answers nothing) for
            8 s, then continued. Every GET must return the right bytes (the
            test's own SHA-256), the GET p50 while the node is stopped must
            stay below the read deadline (the gateway marks the hung node
            down after one deadline and skips it instead of waiting on it
            again) and the p99 within a few deadlines; no request may hang
            (every PUT answers within the write deadline plus margin; a
            refused PUT is a clean 503 SlowDown and never acknowledged).
            After SIGCONT: every acknowledged object reads back
            byte-identical and `strata-repaird --check` is clean on every
            node once the repair daemons pushed handoff data home.

Prints GET p50/p99 healthy and with the node stopped (docs/gateway.md).
"""
import hashlib
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import durability_test as dt  # noqa: E402  (parses argv, skips without boto3)

READ_DEADLINE = 0.5		# the harness's --read-deadline-ms 500
WRITE_DEADLINE = 10.0		# the gateway's default --write-deadline-ms
HUNG = 1.5			# --hung-ms: silent this long under a read
STOPPED_S = 8


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else 0.0


def test_sigstop(c):
    s3 = c.s3
    bucket = "bkt-sigstop"
    s3.create_bucket(Bucket=bucket)
    # Small (3 replicas) and EC objects of 1 and 2 segments.
    keys = {f"base{i}": sz for i, sz in enumerate(dt.sizes(12))}
    acked = dt.put_all(s3, bucket, keys)
    lock = threading.Lock()
    phase = ["healthy"]
    lat = {"healthy": [], "stopped": [], "after": []}
    put_lat = {"healthy": [], "stopped": [], "after": []}
    bad, put_fail, put_err = [], [0], []
    stop = threading.Event()

    def load(t):
        cl = c.client()
        n = 0
        while not stop.is_set():
            with lock:
                names = sorted(acked)
            k = names[(n * 7 + t) % len(names)]
            want = acked[k]
            ph = phase[0]
            t0 = time.time()
            try:
                got = cl.get_object(Bucket=bucket, Key=k)["Body"].read()
                if hashlib.sha256(got).hexdigest() != want:
                    bad.append((k, "bad bytes", len(got)))
            except Exception as e:
                bad.append((k, repr(e)))
            lat[ph].append(time.time() - t0)
            if n % 3 == 0:
                # A new object now and then: small and EC sizes.
                pk = f"load{t}-{n}"
                size = dt.sizes(8)[(n // 3 + t) % 8]
                body = dt.data_of(size, pk)
                ph = phase[0]
                t0 = time.time()
                try:
                    cl.put_object(Bucket=bucket, Key=pk, Body=body)
                    with lock:
                        acked[pk] = hashlib.sha256(body).hexdigest()
                except dt.botocore.exceptions.ClientError as e:
                    if e.response["Error"]["Code"] != "SlowDown":
                        put_err.append((pk, repr(e)))
                    put_fail[0] += 1
                except Exception as e:
                    put_err.append((pk, repr(e)))
                put_lat[ph].append(time.time() - t0)
            n += 1

    victim = 3
    threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(4)
        phase[0] = "stopped"
        c.nodes[victim].proc.send_signal(signal.SIGSTOP)
        dt.step("node stopped")
        time.sleep(STOPPED_S)
        phase[0] = "after"
        c.nodes[victim].proc.send_signal(signal.SIGCONT)
        dt.step("node continued")
        time.sleep(3)
    finally:
        c.nodes[victim].proc.send_signal(signal.SIGCONT)
        stop.set()
        for t in threads:
            t.join()

    def ms(v):
        return f"{v * 1000:.0f} ms"
    for ph in ("healthy", "stopped", "after"):
        print(f"  sigstop {ph:8}: {len(lat[ph])} GETs p50 {ms(pct(lat[ph], 50))} "
              f"p99 {ms(pct(lat[ph], 99))} max {ms(max(lat[ph], default=0))}; "
              f"{len(put_lat[ph])} PUTs p50 {ms(pct(put_lat[ph], 50))} "
              f"max {ms(max(put_lat[ph], default=0))}")
    print(f"  sigstop: {put_fail[0]} PUTs refused (503); load {os.getloadavg()[0]:.2f}")
    assert not bad, bad[:5]
    assert not put_err, put_err[:5]
    assert len(lat["stopped"]) >= 8, lat["stopped"]
    # The point of the gateway's hung-node handling: while the node is
    # stopped, GETs do not wait a deadline each (old behaviour: every EC
    # GET waited >= one read deadline before asking parity).
    healthy99 = pct(lat["healthy"], 99)
    assert pct(lat["stopped"], 50) < READ_DEADLINE + pct(lat["healthy"], 50), \
        (pct(lat["stopped"], 50), sorted(lat["stopped"]))
    assert pct(lat["stopped"], 99) < 4 * READ_DEADLINE + 2 * healthy99, \
        (pct(lat["stopped"], 99), sorted(lat["stopped"]))
    assert max(put_lat["stopped"] + put_lat["after"], default=0) < WRITE_DEADLINE + 10
    # Consistent after SIGCONT: every acknowledged object, and full
    # redundancy once handoff data went home.
    c.settle()
    t0 = time.time()
    c.wait_clean(t0)
    c.check_all()
    dt.verify_all(s3, bucket, acked)
    print(f"  sigstop: {len(acked)} acknowledged objects read back")


def main():
    # The harness's cluster, with a shorter hung verdict (default 3 s) so
    # that the 8 s stop shows the skipping, not only the hedging.
    c = dt.Cluster("hung", gw_args=["--hung-ms", str(int(HUNG * 1000))])

    def setup():
        dt.T0[0] = time.time()
        c.settle()
    return dt.cluster.run(c, [("sigstop", lambda: test_sigstop(c))], [], setup)


if __name__ == "__main__":
    sys.exit(main())
