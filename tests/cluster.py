"""The local-cluster harness of the Python integration tests (gateway_test.py,
durability_test.py and the tests built on them): free loopback ports, daemons
stopped by their PID (never by name), 6 storage nodes with EC 4+2 and
3-replica rings, credentials, the gateway, boto3 clients, and the runner that
prints one line per test, stops every daemon and checks its exit code.

A script that makes clusters checks for boto3 first (and exits 77 without
it), then calls make_tmp() once: daemons' logs and clusters go in that
folder. proc_status() and stop_proc() serve any test's own processes.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback

NODES = 6
KEY1, SECRET1 = "STRATATESTKEY0001", "secretsecretsecretsecretsecret0001"
KEY2, SECRET2 = "STRATATESTKEY0002", "secretsecretsecretsecretsecret0002"
TMP = None


def make_tmp(prefix):
    """This run's folder (TMP); run() removes it when every test passed."""
    global TMP
    TMP = tempfile.mkdtemp(prefix=prefix)
    return TMP


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def proc_status(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def stop_proc(proc, name, timeout=30):
    """SIGCONT (a stopped process cannot act on the rest), SIGTERM, and the
    exit code; still running after timeout s: SIGKILL and AssertionError."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{name}: still running {timeout} s after SIGTERM")


class Daemon:
    """One daemon process, logging to TMP/<name>.log; stopped by its PID,
    never by name. Up once it wrote port_file, or accepts on port, or (with
    neither) at once."""

    def __init__(self, name, args, port=None, port_file=None, start=True):
        self.name, self.args, self.port, self.port_file = name, args, port, port_file
        self.logpath = os.path.join(TMP, name + ".log")
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_text()}")
            if self.port_file and os.path.exists(self.port_file):
                self.port = int(open(self.port_file).read())
                return
            if not self.port_file and self.port:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    return
                except OSError:
                    pass
            if not self.port_file and not self.port:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: not up after 30 s")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        self.log.flush()
        return open(self.logpath).read()[-4000:]

    def status(self, field):
        return proc_status(self.proc.pid, field)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        """stop_proc(); None when never started."""
        return stop_proc(self.proc, self.name, timeout) if self.proc else None


class Cluster:
    """NODES storage nodes (in dir/node<i>, named <prefix>node<i>), the
    rep3 and ec42 rings over them in dir/rings and, with ec12, the second
    storage policy ec12 (EC 1+2, index 1), credentials (KEY1, and KEY2
    as the profile "alt" when alt), and the gateway (<prefix>gateway)."""

    def __init__(self, ring, storaged, gateway, dir, prefix="", part_power=8,
                 node_args=(), gw_args=(), alt=True, ec12=True):
        self.dir, self.prefix = dir, prefix
        self.ports = self.node_ports = free_ports(NODES)
        self.rings = os.path.join(dir, "rings")
        os.makedirs(self.rings)
        rings = [("ec42", ["--ec", "4+2"]), ("rep3", ["--replicas", "3"])]
        if ec12:
            rings.append(("ec12", ["--ec", "1+2", "--index", "1"]))
        for rname, pol in rings:
            b = os.path.join(self.rings, rname + ".builder")
            ring_run(ring, "create", b, "--part-power", str(part_power), *pol)
            for i in range(NODES):
                ring_run(ring, "add", b, "--region", "1", "--zone", str(i + 1),
                         "--node", self.addr(i), "--name", "d0", "--weight", "100")
            ring_run(ring, "rebalance", b, "--ring", os.path.join(self.rings, rname + ".ring"))
        self.creds = os.path.join(dir, "credentials")
        with open(self.creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = {KEY1}\n"
                    f"aws_secret_access_key = {SECRET1}\n")
            if alt:
                f.write(f"\n[alt]\naws_access_key_id = {KEY2}\n"
                        f"aws_secret_access_key = {SECRET2}\n")
        self.nodes = []
        for i, p in enumerate(self.ports):
            d = self.node_dir(i)
            os.makedirs(d + "/hot")
            os.makedirs(d + "/cold")
            self.nodes.append(Daemon(f"{prefix}node{i + 1}", [
                storaged, "--hot", d + "/hot", "--cold", d + "/cold",
                "--listen", "127.0.0.1", "--port", str(p),
                "--node-id", self.addr(i), "--reserve-pct", "0",
                "--index-map-size", "1G", *node_args], port=p))
        pf = os.path.join(dir, "gateway.port")
        self.gw = Daemon(f"{prefix}gateway", [
            gateway, "--listen", "127.0.0.1:0", "--port-file", pf, "--rings", self.rings,
            "--credentials", self.creds, "--read-deadline-ms", "500",
            "--down-ms", "1000", *gw_args], port_file=pf)
        self.url = f"http://127.0.0.1:{self.gw.port}"

    def addr(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def node_dir(self, i):
        return os.path.join(self.dir, f"node{i + 1}")

    def client(self, key=KEY1, secret=SECRET1, **cfg):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=key,
            aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                          retries={"max_attempts": 1}, **cfg))

    def daemons(self):
        """In the order they stop: the gateway first."""
        return [self.gw] + self.nodes

    def stop(self):
        """Stops every daemon; {name: exit code}."""
        rc = {}
        for d in self.daemons():
            rc[d.name] = d.stop()
        return rc


def with_headers(client, op, headers):
    """client (boto3 S3) with extra request headers on operation op (what
    Debian's botocore 1.29 cannot express: IfMatch/IfNoneMatch on PUT and
    DELETE, checksum headers, Strata's x-strata-*)."""
    def add(params, **kw):
        params["headers"].update(headers)
    client.meta.events.register(f"before-call.s3.{op}", add)
    return client


def ring_run(ring, *args):
    subprocess.run([ring, *args], check=True, stdout=subprocess.DEVNULL)


def run(c, tests, only, setup=None, first=None):
    """Runs first() once (an exception from it ends the run), then the tests
    (functions, or (name, function) pairs) that only names (all when empty),
    setup() before each; then stops c's daemons, a nonzero exit
    a failure. Prints "ok"/"FAIL" per test and "N passed, N failed"; removes
    TMP when all passed (unless STRATA_KEEP_TMP or STRATA_TEST_KEEP is set).
    Returns the exit code, 1 when anything failed."""
    passed = failed = 0
    try:
        if first:
            first()
        for t in tests:
            name, fn = t if isinstance(t, tuple) else (t.__name__, t)
            if only and name not in only:
                continue
            t0 = time.time()
            try:
                if setup:
                    setup()
                fn()
                passed += 1
                print(f"ok   {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.1f} s)", flush=True)
                traceback.print_exception(type(e), e, e.__traceback__, limit=-4, chain=False)
                print("---- gateway log tail:\n" + c.gw.log_text()[-3000:])
                if c.gw.proc.poll() is not None:
                    print("the gateway died: the remaining tests are not run")
                    break
    finally:
        rc = c.stop()
        for name, code in rc.items():
            if code not in (0, None):
                failed += 1
                print(f"FAIL {name} exited {code}:\n" +
                      open(os.path.join(TMP, name + ".log")).read()[-3000:])
    print(f"{passed} passed, {failed} failed")
    if failed == 0 and not os.environ.get("STRATA_KEEP_TMP") \
       and not os.environ.get("STRATA_TEST_KEEP"):
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print(f"(files kept in {TMP})")
    return 1 if failed else 0
