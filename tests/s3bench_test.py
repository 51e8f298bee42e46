#!/usr/bin/python3
"""Integration test of `strata-bench s3`: a real local cluster (6 storage
nodes, strata-gateway on free loopback ports in a temporary folder), the
benchmark run briefly against it, and its JSON checked.

usage: s3bench_test.py STRATA_RING STRATA_STORAGED STRATA_GATEWAY STRATA_BENCH

Checks: every phase did work with zero errors and --verify passed on every
GET; a run expecting another content version fails verification (so the
check can fail); --compare emits both targets and the ratios; SIGINT reports
the partial phase. Daemons are stopped by PID.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RING, STORAGED, GATEWAY, BENCH = (os.path.abspath(a) for a in sys.argv[1:5])
TMP = tempfile.mkdtemp(prefix="s3bench-test.")
NODES = 6
AK, SK = "STRATABENCHKEY01", "benchsecretbenchsecretbenchsecret0001"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(proc, port=None, port_file=None, name=""):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start")
        if port_file and os.path.exists(port_file):
            with open(port_file) as f:
                txt = f.read().strip()
            if txt:
                return int(txt)
        if port:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return port
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"{name}: not up after 30 s")


def start(name, args):
    log = open(os.path.join(TMP, name + ".log"), "a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def bench(url, *args, expect_rc=0, out=None):
    out = out or os.path.join(TMP, f"out-{time.time_ns()}.json")
    cmd = [BENCH, "s3", "--endpoint", url, "--access-key", AK, "--secret-key", SK,
           "--progress", "0", "--out", out, *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    if p.returncode != expect_rc:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}, wanted {expect_rc}\n"
                             f"{p.stderr}")
    with open(out) as f:
        return [json.loads(line) for line in f], p.stderr


def main():
    procs = []
    ports = free_ports(NODES)
    rings = os.path.join(TMP, "rings")
    os.makedirs(rings)
    for name, pol in (("ec42", ["--ec", "4+2"]), ("rep3", ["--replicas", "3"])):
        b = os.path.join(rings, name + ".builder")
        run = lambda *a: subprocess.run([RING, *a], check=True, stdout=subprocess.DEVNULL)
        run("create", b, "--part-power", "8", *pol)
        for i, p in enumerate(ports):
            run("add", b, "--region", "1", "--zone", str(i + 1), "--node",
                f"127.0.0.1:{p}", "--name", "d0", "--weight", "100")
        run("rebalance", b, "--ring", os.path.join(rings, name + ".ring"))
    creds = os.path.join(TMP, "credentials")
    with open(creds, "w") as f:
        f.write(f"[default]\naws_access_key_id = {AK}\naws_secret_access_key = {SK}\n")
    try:
        for i, p in enumerate(ports):
            d = os.path.join(TMP, f"node{i + 1}")
            os.makedirs(d + "/hot")
            os.makedirs(d + "/cold")
            procs.append(start(f"node{i + 1}", [
                STORAGED, "--hot", d + "/hot", "--cold", d + "/cold", "--listen",
                "127.0.0.1", "--port", str(p), "--node-id", f"127.0.0.1:{p}",
                "--reserve-pct", "0", "--index-map-size", "256M"]))
            wait_port(procs[-1], port=p, name=f"node{i + 1}")
        pf = os.path.join(TMP, "gateway.port")
        procs.append(start("gateway", [GATEWAY, "--listen", "127.0.0.1:0", "--port-file",
                                       pf, "--rings", rings, "--credentials", creds]))
        url = f"http://127.0.0.1:{wait_port(procs[-1], port_file=pf, name='gateway')}"
        checks(url)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    shutil.rmtree(TMP)
    print("s3bench_test: all checks passed")


def res(phase):
    return phase["results"]


def checks(url):
    # 1. A short run of every supported phase, a size mix, every GET checked.
    phases, err = bench(url, "--duration", "1.5", "--concurrency", "8", "--verify",
                        "--sizes", "4K:50,64K:40,1M:10", "--prefixes", "4",
                        "--phases", "put,get,head,mixed,delete", "--mix", "20,60,20,0,0")
    names = [p["phase"] for p in phases]
    assert names == ["put", "get", "head", "mixed", "delete"], names
    for p in phases:
        r = res(p)
        assert r["ops"] > 0 and r["ops_per_s"] > 0, (p["phase"], r)
        assert r["errors"] == 0, (p["phase"], r["errors_by_type"], err)
        assert r["p50_us"] > 0 and r["max_us"] >= r["p99_us"] >= r["p50_us"], r
        assert "client_cpu_pct" in r and r["mib_per_s"] <= r["mb_per_s"], r
        assert p["machine"]["cores"] >= 1 and p["git_rev"], p
        assert p["params"]["concurrency"] == 8 and p["params"]["verify"] is True
    for name in ("get", "mixed"):
        r = res(phases[names.index(name)])
        assert r["verify"] == "passed" and r["verified_bytes"] > 0, (name, r)
    # delete removes the keys the put phase wrote (at most --duration long)
    assert 0 < res(phases[names.index("delete")])["ops"] <= res(phases[0])["ops"]
    print("ok: put/get/head/mixed/delete, zero errors, verify passed")

    # 2. Verification can fail: objects written as version 1, read as 2.
    bench(url, "--run-id", "5eed", "--count", "12", "--phases", "put",
          "--concurrency", "3", "--sizes", "4K:1,20K:1")
    phases, _ = bench(url, "--run-id", "5eed", "--keys", "12", "--count", "12",
                      "--phases", "get", "--verify", "--content-version", "2",
                      "--concurrency", "3", "--sizes", "4K:1,20K:1", expect_rc=3)
    r = res(phases[0])
    assert r["verify"] == "failed" and r["errors_by_type"] == {"verify:content": 12}, r
    phases, _ = bench(url, "--run-id", "5eed", "--keys", "12", "--count", "12",
                      "--phases", "get,delete", "--verify", "--concurrency", "3",
                      "--sizes", "4K:1,20K:1")
    assert res(phases[0])["verify"] == "passed" and res(phases[1])["ops"] == 12
    # ... and deleted objects are now errors (404 NoSuchKey), by type.
    phases, _ = bench(url, "--run-id", "5eed", "--keys", "12", "--count", "5",
                      "--phases", "get", "--concurrency", "1", expect_rc=3)
    assert res(phases[0])["errors_by_type"] == {"http:404 NoSuchKey": 5}, res(phases[0])
    print("ok: wrong content and missing objects are reported as errors by type")

    # 2b. --signed-payload: the body's SHA-256 signed and checked by the gateway.
    phases, _ = bench(url, "--count", "10", "--concurrency", "2", "--signed-payload",
                      "--sizes", "4K:1,100K:1", "--phases", "put,get,delete", "--verify")
    assert [res(p)["ops"] for p in phases] == [10, 10, 10], phases
    assert phases[0]["params"]["payload"] == "signed" and res(phases[1])["verify"] == "passed"
    print("ok: --signed-payload")

    # 2c. A dead endpoint: a prompt failure, not a hang.
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    t0 = time.time()
    p = subprocess.run([BENCH, "s3", "--endpoint", dead, "--access-key", AK, "--secret-key",
                        SK, "--count", "5"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "cannot connect" in p.stderr, (p.returncode, p.stderr)
    assert time.time() - t0 < 30
    print("ok: a dead endpoint fails at once")

    # 3. --compare: the same gateway twice (two buckets), both rows and ratios.
    phases, err = bench(url, "--compare", url, "--bucket2", "strata-bench-b",
                        "--duration", "0.5", "--concurrency", "4",
                        "--phases", "put,get,delete")
    kinds = [(p["phase"], p["params"].get("target", "ratio")) for p in phases]
    assert kinds == [("put", "ratio"), ("put", "a"), ("put", "b"), ("get", "ratio"),
                     ("get", "a"), ("get", "b"), ("delete", "ratio"), ("delete", "a"),
                     ("delete", "b")], kinds
    assert phases[0]["results"]["ratio_ops_per_s"] > 0, phases[0]
    assert "a/b" in err
    print("ok: --compare")

    # 4. SIGINT: the partial phase is reported, exit 130.
    out = os.path.join(TMP, "interrupted.json")
    cmd = [BENCH, "s3", "--endpoint", url, "--access-key", AK, "--secret-key", SK,
           "--duration", "60", "--phases", "put,get", "--out", out, "--progress", "0.5"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    with open(out) as f:
        phases = [json.loads(line) for line in f]
    assert len(phases) == 1 and phases[0]["phase"] == "put", phases
    assert res(phases[0])["interrupted"] is True and res(phases[0])["ops"] > 0
    assert res(phases[0])["seconds"] < 30
    assert "s3 put[a]:" in err, err          # the progress line
    print("ok: SIGINT reports the partial phase")


if __name__ == "__main__":
    main()
