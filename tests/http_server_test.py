#!/usr/bin/python3
"""Integration test of the HTTP/1.1 server layer against api/test-http-server.

usage: http_server_test.py TEST_HTTP_SERVER [TEST_NAME...]

Starts the demo server (several instances with different limits) on free
loopback ports in a temporary folder, drives it with http.client, raw
sockets and curl, and stops each by its PID with SIGTERM, expecting a clean
exit (the sanitizers' leak check included). Prints one line per test and
"N passed, N failed".
"""
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from cluster import proc_status, stop_proc

SERVER = os.path.abspath(sys.argv[1])
ONLY = sys.argv[2:]
TMP = tempfile.mkdtemp(prefix="http-server-test.")
PATTERN = bytes(i % 251 for i in range(251 * 4096))	# byte i == i % 251


class Server:
    """One test-http-server process; stopped by PID, never by name."""

    def __init__(self, name, *settings, grace_ms=10000):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        port_file = os.path.join(self.dir, "port")
        args = [SERVER, "--port-file", port_file, "--grace-ms", str(grace_ms)]
        for s in settings:
            args += ["--set", s]
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start: {self.log_text()}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{name}: no port file after 10 s")
        self.port = int(open(port_file).read())

    def log_text(self):
        self.log.flush()
        return open(os.path.join(self.dir, "log")).read()

    def status(self, field):
        return proc_status(self.proc.pid, field)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        """The exit code (0 expected)."""
        return stop_proc(self.proc, self.name, timeout)

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def http(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def recv_all(s, limit=1 << 26):
    """Everything until the server closes."""
    out = b""
    while len(out) < limit:
        d = s.recv(65536)
        if not d:
            break
        out += d
    return out


def read_response(s, buf=b""):
    """Reads one response from socket s (buf: bytes already read). Returns
    (status, headers dict (lower-case names), body, leftover bytes)."""
    def fill(buf):
        d = s.recv(65536)
        if not d:
            raise EOFError("connection closed mid-response")
        return buf + d

    while b"\r\n\r\n" not in buf:
        buf = fill(buf)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if status < 200:
        return status, headers, b"", buf
    body = b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            buf = fill(buf)
        body, buf = buf[:n], buf[n:]
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            while b"\r\n" not in buf:
                buf = fill(buf)
            size_line, buf = buf.split(b"\r\n", 1)
            n = int(size_line.split(b";")[0], 16)
            while len(buf) < n + 2:
                buf = fill(buf)
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                break
    else:
        body = buf + recv_all(s)
        buf = b""
    return status, headers, body, buf


def closed_by_server(s, within=5.0):
    """True if the server closes s (EOF or reset) within the time."""
    s.settimeout(within)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def pattern_bytes(n):
    """The first n bytes of the test pattern, as a list of chunks."""
    out = []
    while n > 0:
        piece = PATTERN[:min(n, len(PATTERN))]
        out.append(piece)
        n -= len(piece)
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ----------------------------------------------------------------- tests

@test
def keep_alive_several_requests(main, small):
    c = main.http()
    c.connect()
    local = c.sock.getsockname()
    for path in ["/hello", "/headers?x=1", "/hello", "/large?size=100000", "/hello"]:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        check(r.status == 200, f"{path}: status {r.status}")
        check(r.getheader("Connection") is None, f"{path}: Connection {r.getheader('Connection')}")
        check(r.getheader("Date", "").endswith(" GMT"), "no Date header")
        check(c.sock is not None and c.sock.getsockname() == local,
              "a new connection was opened")
    check(body == b"hello world\n", "wrong body")
    c.close()


@test
def pipelined_requests(main, small):
    s = main.connect()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
              b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
              b"GET /headers?q=%2F HTTP/1.1\r\nHost: x\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n"
              b"HEAD /large?size=77 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, h, body, rest = read_response(s)
    check((st, body) == (200, b"hello world\n"), f"1: {st} {body!r}")
    st, h, body, rest = read_response(s, rest)
    check((st, body) == (200, b"abcde"), f"2: {st} {body!r}")
    st, h, body, rest = read_response(s, rest)
    check(st == 200 and b"target=/headers?q=%2F\n" in body and
          b"X-Dup: 1\nx-dup: 2\n" in body, f"3: {st} {body!r}")
    # HEAD: the length of the GET, no body: the next response follows at once.
    st, h, body, rest = read_response_head_only(s, rest)
    check(st == 200 and h.get("content-length") == "77", f"4: {st} {h}")
    st, h, body, rest = read_response(s, rest)
    check((st, body) == (200, b"hello world\n"), f"5: {st} {body!r}")
    check(h.get("connection") == "close", "no Connection: close on the last")
    check(rest == b"" and closed_by_server(s), "not closed after Connection: close")


def read_response_head_only(s, buf):
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    h = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), h, b"", buf


@test
def http10_and_connection_close(main, small):
    s = main.connect()
    s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 200 and body == b"hello world\n", f"1.0: {st} {body!r}")
    check(closed_by_server(s), "HTTP/1.0 without keep-alive not closed")
    s = main.connect()
    s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, body, rest = read_response(s)
    check(h.get("connection") == "keep-alive", f"1.0 keep-alive: {h}")
    # HTTP/1.0 can't take chunks: a streamed response ends with the connection.
    s.sendall(b"GET /stream?chunks=3&size=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, body, rest = read_response(s, rest)
    check(st == 200 and len(body) == 30 and "transfer-encoding" not in h,
          f"1.0 stream: {st} {h} {len(body)}")
    s = main.connect()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(h.get("connection") == "close" and closed_by_server(s), "Connection: close ignored")


@test
def chunked_upload_and_download(main, small):
    data = os.urandom(300000)
    path = os.path.join(TMP, "upload.bin")
    with open(path, "wb") as f:
        f.write(data)
    out = subprocess.run(["curl", "-sS", "--fail", "-H", "Transfer-Encoding: chunked",
                          "--data-binary", "@" + path, main.url("/echo")],
                         capture_output=True, timeout=30)
    check(out.returncode == 0 and out.stdout == data,
          f"curl chunked echo: rc {out.returncode} {len(out.stdout)} bytes {out.stderr!r}")
    # Raw chunked upload with extensions and a trailer, odd chunk sizes.
    s = main.connect()
    s.sendall(b"PUT /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent, off = 0, 0
    for n in [1, 250, 251, 4096, 65536, 7]:
        piece = PATTERN[off:off + n]
        s.sendall(b"%x;ext=1\r\n" % n + piece + b"\r\n")
        off += n
        sent += n
    s.sendall(b"0\r\nX-Trailer: yes\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 200 and body == b"bytes=%d ok=1\n" % sent, f"raw chunked: {st} {body!r}")
    # Chunked download with backpressure from the write completions.
    c = main.http()
    c.request("GET", "/stream?chunks=200&size=5000")
    r = c.getresponse()
    body = r.read()
    check(r.getheader("Transfer-Encoding") == "chunked", "not chunked")
    check(len(body) == 200 * 5000 and body[:5000] == PATTERN[:5000], f"stream: {len(body)}")
    c.close()


@test
def large_fixed_response(main, small):
    out = subprocess.run(["curl", "-sS", "--fail", main.url("/large?size=50000000")],
                         capture_output=True, timeout=60)
    check(out.returncode == 0 and len(out.stdout) == 50000000, f"{len(out.stdout)} bytes")
    check(out.stdout[:len(PATTERN)] == PATTERN[:len(out.stdout[:len(PATTERN)])] or
          out.stdout[:1000] == bytes(i % 251 for i in range(1000)), "wrong bytes")


@test
def expect_continue_accepted(main, small):
    for path in ["/slow", "/defer?ms=200&accept=1"]:
        s = main.connect()
        body = PATTERN[:100000]
        s.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"Expect: 100-continue\r\n\r\n" % (path.encode(), len(body)))
        st, h, _, rest = read_response(s)
        check(st == 100 and rest == b"", f"{path}: wanted 100 first, got {st}")
        s.sendall(body)
        st, h, resp, rest = read_response(s, rest)
        check(st == 200 and resp == b"bytes=100000 ok=1\n", f"{path}: {st} {resp!r}")
        check(h.get("connection") is None, f"{path}: closes after an accepted 100")
        s.close()
    # curl waits for the 100 too.
    path = os.path.join(TMP, "expect.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(2 << 20))
    out = subprocess.run(["curl", "-sS", "--fail", "-T", path, "-H", "Expect: 100-continue",
                          main.url("/echo")], capture_output=True, timeout=30)
    check(out.returncode == 0 and out.stdout == open(path, "rb").read(),
          f"curl -T echo: rc {out.returncode} {out.stderr!r}")


@test
def expect_continue_rejected(main, small):
    for path in ["/reject", "/defer?ms=200&accept=0"]:
        s = main.connect()
        s.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                  b"Expect: 100-continue\r\n\r\n" % path.encode())
        st, h, body, rest = read_response(s)
        check(st == 403, f"{path}: wanted 403 without a 100, got {st}")
        check(h.get("connection") == "close", f"{path}: a rejected 100 must close")
        check(closed_by_server(s), f"{path}: not closed")
    # Expectations other than 100-continue: 417.
    s = main.connect()
    s.sendall(b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: magic\r\n\r\nx")
    st, h, body, rest = read_response(s)
    check(st == 417, f"Expect: magic gave {st}")


@test
def early_answer_drains_body(main, small):
    # No Expect: the client sends its body anyway; the server answers
    # early, drains the body, and the connection stays usable.
    s = main.connect()
    s.sendall(b"PUT /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n")
    st, h, body, rest = read_response(s)
    check(st == 403 and h.get("connection") is None, f"{st} {h}")
    s.sendall(PATTERN[:300000])
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body, rest = read_response(s, rest)
    check(st == 200 and body == b"hello world\n", f"after drain: {st} {body!r}")
    # Too much left to drain (over 1 MiB): answered, then closed.
    s = main.connect()
    s.sendall(b"PUT /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
    st, h, body, rest = read_response(s)
    check(st == 403, f"big refused body: {st}")
    check(closed_by_server(s, 5), "kept a connection with 50 MB left to drain")


@test
def limits_431_414_413(main, small):
    def one(srv, req, want, body=b""):
        s = srv.connect()
        s.sendall(req)
        if body:
            try:
                s.sendall(body)
            except OSError:
                pass
        st, h, resp, _ = read_response(s)
        check(st == want, f"wanted {want}, got {st} for {req[:60]!r}")
        check(h.get("connection") == "close" and closed_by_server(s), f"{want}: not closed")

    many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    one(main, b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n", 431)
    one(main, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431)
    one(main, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414)
    one(main, b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (6 << 30), 413)
    # small: max_body=1M; a chunked body crossing it mid-stream.
    one(small, b"PUT /slow HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 413,
        b"".join(b"10000\r\n" + PATTERN[:0x10000] + b"\r\n" for _ in range(20)))
    # Exactly at the limits is fine.
    s = small.connect()
    s.sendall(b"PUT /slow HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (1 << 20))
    for piece in pattern_bytes(1 << 20):
        s.sendall(piece)
    st, h, body, _ = read_response(s)
    check(st == 200 and body == b"bytes=1048576 ok=1\n", f"at max_body: {st} {body!r}")


@test
def error_reply_survives_unread_body(main, small):
    # A 413 while the client is still sending 20 MiB: the server must not
    # close with the body unread (a TCP reset could destroy the 413 before
    # the client reads it): it half-closes and reads on for a while.
    for attempt in range(3):
        s = small.connect()
        s.sendall(b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (20 << 20))
        # The 413 comes at the head: send the body regardless, like a
        # client that does not use 100-continue.
        sender_err = []

        def send_body():
            try:
                for piece in pattern_bytes(20 << 20):
                    s.sendall(piece)
            except OSError as e:
                sender_err.append(e)
        t = threading.Thread(target=send_body)
        t.start()
        time.sleep(0.3)
        try:
            st, h, body, _ = read_response(s)
        except (ConnectionResetError, EOFError) as e:
            raise AssertionError(f"attempt {attempt}: no 413 but {e!r}")
        finally:
            t.join()
            s.close()
        check(st == 413 and h.get("connection") == "close", f"{st} {h}")
    # Deterministic: after a 400 the server half-closes (we read EOF) but
    # keeps reading, so what we still send is not answered with a reset.
    s = main.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n")
    st, h, body, rest = read_response(s)
    check(st == 400 and rest == b"" and s.recv(10) == b"", f"{st}: no FIN")
    try:
        for _ in range(20):
            s.sendall(b"x" * 65536)
            time.sleep(0.01)
    except OSError as e:
        raise AssertionError(f"reset instead of a lingering close: {e!r}")
    s.close()


@test
def client_reset_while_body_lent(main, small):
    # /late keeps each body piece lent for 300 ms and reads it then; the
    # client resets meanwhile: the server must keep the piece until the
    # handler is done with it (ASan would see a use after free).
    c = main.http()
    c.request("PUT", "/late?delay_ms=50", body=PATTERN[:200000])
    r = c.getresponse()
    check(r.read() == b"bytes=200000 ok=1\n", "late consumer broken")
    c.close()
    for _ in range(3):
        s = main.connect()
        s.sendall(b"PUT /late?delay_ms=300 HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        s.sendall(PATTERN[:10000])	# less than the read buffer: it reads on
        time.sleep(0.1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()		# a reset while the server holds a piece
    time.sleep(0.6)
    check(main.alive(), "server died")
    c = main.http()
    c.request("GET", "/hello")
    check(c.getresponse().read() == b"hello world\n", "server no longer answers")


@test
def malformed_400(main, small):
    for req in [b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(64),
                b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
                b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"PUT /slow HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
                b"\r\n\r\nHELLO\r\n\r\n",
                b"GET / HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n"]:
        s = main.connect()
        s.sendall(req)
        st, h, body, _ = read_response(s)
        check(st == 400, f"wanted 400, got {st} for {req[:40]!r}")
        check(closed_by_server(s), f"not closed after 400 for {req[:40]!r}")
    s = main.connect()
    s.sendall(b"GET / HTTP/2.0\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 505, f"HTTP/2.0 request line gave {st}")


@test
def garbage_does_not_crash(main, small):
    rng = random.Random(5)
    seeds = [b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
             b"PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
             b"PUT /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n0123456789"]
    for i in range(150):
        kind = i % 3
        if kind == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        else:
            data = bytearray(rng.choice(seeds) * rng.randrange(1, 4))
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[:rng.randrange(1, len(data) + 1)])
        s = main.connect()
        try:
            s.sendall(data)
            if kind == 2:
                # Abrupt reset instead of a close.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                recv_all(s)
        except OSError:
            pass
        s.close()
    check(main.alive(), "server died")
    c = main.http()
    c.request("GET", "/hello")
    check(c.getresponse().read() == b"hello world\n", "server no longer answers")


@test
def timeouts(main, small):
    # small: idle 400 ms, headers 600 ms, body 600 ms.
    s = small.connect()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    read_response(s)
    t0 = time.monotonic()
    check(closed_by_server(s, 5), "idle keep-alive connection not closed")
    dt = time.monotonic() - t0
    check(0.2 < dt < 3, f"idle close after {dt:.2f} s, wanted about 0.4")
    s = small.connect()
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")	# headers never end
    st, h, body, _ = read_response(s)
    check(st == 408 and closed_by_server(s), f"slow headers: {st}")
    s = small.connect()
    s.sendall(b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + PATTERN[:10])
    st, h, body, _ = read_response(s)
    check(st == 408 and closed_by_server(s), f"slow body: {st}")
    # A request that keeps trickling is not cut off by the body timeout.
    s = small.connect()
    s.sendall(b"PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
    for i in range(8):
        time.sleep(0.2)
        s.sendall(PATTERN[i:i + 1])
    st, h, body, _ = read_response(s)
    check(st == 200 and body == b"bytes=8 ok=1\n", f"trickle: {st} {body!r}")
    # A client that stops reading a large response: cut off (send timeout).
    s = small.connect()
    s.sendall(b"GET /large?size=60000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(2)
    got = 0
    s.settimeout(5)
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    except ConnectionResetError:
        pass
    check(got < 60000000, f"a stalled reader got the whole response ({got} bytes)")


@test
def max_conns(main, small):
    # small: max_conns=8; the 9th connection is closed at once.
    conns = [small.connect() for _ in range(8)]
    extra = small.connect()
    check(closed_by_server(extra, 2), "connection over max_conns not closed")
    conns[0].sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body, _ = read_response(conns[0])
    check(st == 200, f"existing connection: {st}")
    for c in conns:
        c.close()


@test
def big_upload_slow_consumer_small_rss(main, small):
    size = 1 << 30
    if os.environ.get("STRATA_HTTP_QUICK"):
        size = 64 << 20
    rss_before = main.status("VmRSS")
    s = main.connect(timeout=120)
    s.sendall(b"PUT /slow?delay_ms=20&every=16777216 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % size)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], main.status("VmRSS"))
            except (OSError, KeyError):
                return
            time.sleep(0.05)
    t = threading.Thread(target=sample)
    t.start()
    t0 = time.monotonic()
    try:
        left = size
        while left:
            piece = PATTERN if left >= len(PATTERN) else PATTERN[:left]
            s.sendall(piece)
            left -= len(piece)
        st, h, body, _ = read_response(s)
    finally:
        stop.set()
        t.join()
    dt = time.monotonic() - t0
    check(st == 200 and body == b"bytes=%d ok=1\n" % size, f"{st} {body!r}")
    hwm = main.status("VmHWM")
    print(f"    {size >> 20} MiB in {dt:.1f} s ({size / dt / 1e6:.0f} MB/s); server RSS "
          f"{rss_before // 1024} MiB before, {peak[0] // 1024} MiB peak sampled, "
          f"VmHWM {hwm // 1024} MiB")
    check(peak[0] < 64 * 1024, f"RSS peaked at {peak[0] // 1024} MiB")
    check(hwm < 64 * 1024, f"VmHWM {hwm // 1024} MiB")


@test
def graceful_shutdown(main, small):
    srv = Server("shutdown", "idle_timeout_ms=60000", grace_ms=5000)
    try:
        idle = srv.connect()
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(idle)
        busy = srv.connect()
        busy.sendall(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        check(closed_by_server(idle, 1), "idle keep-alive connection not closed at once")
        time.sleep(0.2)
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            raise AssertionError("still accepting after SIGTERM")
        except ConnectionRefusedError:
            pass
        st, h, body, _ = read_response(busy)
        check(st == 200 and body == b"slept\n", f"in-flight request: {st} {body!r}")
        check(h.get("connection") == "close", "in-flight response lacks Connection: close")
        check(closed_by_server(busy, 3), "not closed after the in-flight response")
        busy.close()
        rc = srv.proc.wait(10)
        dt = time.monotonic() - t0
        check(rc == 0, f"exit code {rc}: {srv.log_text()}")
        check(dt < 4, f"shutdown took {dt:.1f} s")
    finally:
        srv.stop()
    # Past the grace time, what is left is cut off.
    srv = Server("shutdown-grace", grace_ms=500)
    try:
        busy = srv.connect()
        busy.sendall(b"GET /sleep?ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        check(closed_by_server(busy, 5), "not cut off after the grace time")
        rc = srv.proc.wait(10)
        check(rc == 0 and time.monotonic() - t0 < 3, f"exit {rc} after {time.monotonic() - t0:.1f} s")
    finally:
        srv.stop()


def main():
    for tool in ["curl"]:
        if not shutil.which(tool):
            print(f"SKIP: {tool} not installed (tools/dev install)")
            return 77
    passed = failed = 0
    servers = []
    try:
        mainsrv = Server("main")
        servers.append(mainsrv)
        small = Server("small", "max_body=1M", "idle_timeout_ms=400",
                       "header_timeout_ms=600", "body_timeout_ms=600",
                       "send_timeout_ms=600", "max_conns=8")
        servers.append(small)
        for fn in TESTS:
            if ONLY and fn.__name__ not in ONLY:
                continue
            t0 = time.monotonic()
            try:
                fn(mainsrv, small)
                print(f"ok   {fn.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
                passed += 1
            except Exception:
                print(f"FAIL {fn.__name__}", flush=True)
                traceback.print_exc()
                failed += 1
        for srv in servers:
            rc = srv.stop()
            if rc != 0:
                print(f"FAIL {srv.name} exited {rc}:\n{srv.log_text()}")
                failed += 1
    finally:
        for srv in servers:
            if srv.alive():
                srv.proc.kill()
                srv.proc.wait()
        if failed:
            print(f"logs kept in {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
