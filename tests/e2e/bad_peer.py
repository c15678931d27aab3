#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A misbehaving (or, in mode "ok", a recording) HTTP receiver for the fault suite
# (tests/integration/fault_peers.sh). One process serves one mode on one port, for every
# path: the agent's Loki push and remote write and the aggregator's Alertmanager client all
# point at it. The test replaces a bad peer by an "ok" one on the same port to check that
# every client recovers.
"""Usage: bad_peer.py --listen 127.0.0.1:PORT --mode MODE [--out PREFIX]

Modes:
  hang     accepts, reads the request, never answers (holds the socket until the client
           gives up)
  slow     answers one byte every --byte-delay seconds: a 503 status line and headers,
           then an endless body (so a client that does not time out never finishes)
  reset    reads part of the request, then resets the connection (RST, SO_LINGER 0)
  garbage  answers something that is not a usable HTTP response, one of these by turns:
           random bytes; a status line of binary junk; a 500 that announces 1 TiB and
           streams random bytes; a 503 whose header never ends. Never a 2xx: a client must
           not count it as delivered.
  ok       a good receiver: POST /loki/api/v1/push is decoded and appended to PREFIX.logs
           (loki_sink.py records, for check_lines.py), POST /api/v1/write to PREFIX.rw
           (one line per sample: labels<TAB>timestamp-ms), POST /api/v2/alerts to
           PREFIX.alerts (one JSON alert per line); each answers 2xx.
GET /stats on the "ok" mode prints the counts as JSON. Every mode counts connections in
PREFIX.conns (one line per connection) when --out is given.
"""

import argparse
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loki_sink  # noqa: E402  (decoders: snappy/zstd via ctypes, protobuf fields)

MAX_BODY = 64 << 20
JUNK = os.urandom(1 << 20)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def read_head(sock, deadline):
    """Reads until the end of the request header; returns (head, rest) or (None, b'')."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 1 << 20 or time.monotonic() > deadline:
            return None, b""
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            c = sock.recv(65536)
        except OSError:
            return None, b""
        if not c:
            return None, b""
        buf += c
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def read_request(sock, timeout=30):
    """Reads one whole request; returns (method, path, headers, body) or None."""
    deadline = time.monotonic() + timeout
    head, body = read_head(sock, deadline)
    if head is None:
        return None
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    hdr = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdr[k.strip().lower()] = v.strip()
    if hdr.get("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    n = int(hdr.get("content-length", "0") or 0)
    if n < 0 or n > MAX_BODY:
        return None
    while len(body) < n:
        if time.monotonic() > deadline:
            return None
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            c = sock.recv(min(1 << 20, n - len(body)))
        except OSError:
            return None
        if not c:
            return None
        body += c
    return parts[0], parts[1], hdr, body[:n]


def drain_until_closed(sock, limit_s):
    """Reads and discards until the client closes (or limit_s passes)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        sock.settimeout(1)
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def send_slowly(sock, data, delay, limit_s):
    end = time.monotonic() + limit_s
    for i in range(len(data)):
        if time.monotonic() > end:
            return False
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return False
        time.sleep(delay)
    return True


def stream_junk(sock, limit_bytes):
    sent = 0
    try:
        while sent < limit_bytes:
            sock.sendall(JUNK)
            sent += len(JUNK)
    except OSError:
        pass


def decode_rw(raw):
    """Yields (labels string, timestamp ms) for every sample of a WriteRequest."""
    for f, _, ts in loki_sink.fields(raw):
        if f != 1:
            continue
        labels, samples = [], []
        for sf, _, v in loki_sink.fields(ts):
            if sf == 1:
                name = value = b""
                for lf, _, lv in loki_sink.fields(v):
                    if lf == 1:
                        name = lv
                    elif lf == 2:
                        value = lv
                labels.append((name.decode(), value.decode()))
            elif sf == 2:
                t = 0
                for pf, _, pv in loki_sink.fields(v):
                    if pf == 2:
                        t = pv if pv < 1 << 63 else pv - (1 << 64)
                samples.append(t)
        lab = ",".join('%s="%s"' % kv for kv in sorted(labels))
        for t in samples:
            yield lab, t


class Peer:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.n = 0
        self.stats = {"connections": 0, "requests": 0, "log_entries": 0, "samples": 0,
                      "alerts": 0, "bad": 0}
        self.files = {}
        if a.out:
            for k in ("logs", "rw", "alerts", "conns"):
                self.files[k] = open("%s.%s" % (a.out, k), "ab", buffering=0)

    def write(self, kind, data):
        if kind in self.files and data:
            with self.lock:
                self.files[kind].write(data)

    def handle(self, sock):
        with self.lock:
            self.n += 1
            k = self.n
            self.stats["connections"] += 1
        self.write("conns", b"%s %d\n" % (self.a.mode.encode(), k))
        mode = self.a.mode
        if mode == "hang":
            read_request(sock, 10)
            drain_until_closed(sock, 600)
        elif mode == "slow":
            if read_request(sock, 10) is None:
                return
            head = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 1000000\r\n\r\n")
            if send_slowly(sock, head, self.a.byte_delay, 600):
                send_slowly(sock, b"." * 1000000, self.a.byte_delay, 600)
        elif mode == "reset":
            sock.settimeout(5)
            try:
                sock.recv(100)
            except OSError:
                pass
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "garbage":
            if read_request(sock, 10) is None:
                return
            kind = k % 4
            try:
                if kind == 0:
                    stream_junk(sock, 64 << 20)
                elif kind == 1:
                    sock.sendall(b"HTTP/1.1 " + JUNK[:4096] + b"\r\n\r\n")
                elif kind == 2:
                    sock.sendall(b"HTTP/1.1 500 Internal Server Error\r\n"
                                 b"Content-Length: 1099511627776\r\n\r\n")
                    stream_junk(sock, 256 << 20)
                else:
                    sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nX-Junk: ")
                    stream_junk(sock, 64 << 20)
            except OSError:
                pass
        else:
            self.serve_ok(sock)

    def serve_ok(self, sock):
        while True:
            req = read_request(sock, 60)
            if req is None:
                return
            method, path, hdr, body = req
            path = path.split("?")[0]
            code, out = 204, b""
            try:
                if method == "GET" and path == "/stats":
                    with self.lock:
                        out = json.dumps(self.stats).encode()
                    code = 200
                elif method == "GET":
                    code, out = 200, b"ok\n"
                elif path == "/loki/api/v1/push":
                    enc = (hdr.get("content-encoding") or "snappy").lower()
                    raw = (loki_sink.snappy_decode(body) if enc == "snappy" else
                           loki_sink.zstd_decode(body) if enc == "zstd" else body)
                    ents = loki_sink.decode_push(raw)
                    batch = hdr.get("x-nines-batch-id", "-")
                    self.write("logs", b"".join(loki_sink.record(l, t, ln, batch)
                                                for l, t, ln in ents))
                    with self.lock:
                        self.stats["log_entries"] += len(ents)
                elif path == "/api/v1/write":
                    enc = (hdr.get("content-encoding") or "snappy").lower()
                    raw = (loki_sink.snappy_decode(body) if enc == "snappy" else
                           loki_sink.zstd_decode(body) if enc == "zstd" else body)
                    got = list(decode_rw(raw))
                    self.write("rw", "".join("%s\t%d\n" % s for s in got).encode())
                    with self.lock:
                        self.stats["samples"] += len(got)
                elif path == "/api/v2/alerts":
                    alerts = json.loads(body)
                    self.write("alerts", b"".join(json.dumps(x).encode() + b"\n" for x in alerts))
                    with self.lock:
                        self.stats["alerts"] += len(alerts)
                    code = 200
                else:
                    code = 404
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                code, out = 400, ("bad request: %s\n" % e).encode()
                with self.lock:
                    self.stats["bad"] += 1
            with self.lock:
                self.stats["requests"] += 1
            hdrs = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (code, len(out))
            if code == 200 and out and out[:1] == b"{":
                hdrs += "Content-Type: application/json\r\n"
            try:
                sock.sendall(hdrs.encode() + b"\r\n" + (out if code != 204 else b""))
            except OSError:
                return
            if hdr.get("connection", "").lower() == "close":
                return


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--mode", required=True, choices=["hang", "slow", "reset", "garbage", "ok"])
    ap.add_argument("--out", help="prefix of the output files")
    ap.add_argument("--byte-delay", type=float, default=0.5)
    a = ap.parse_args()
    peer = Peer(a)

    class H(socketserver.BaseRequestHandler):
        def handle(self):
            peer.handle(self.request)

    host, port = a.listen.rsplit(":", 1)
    srv = Server((host, int(port)), H)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
