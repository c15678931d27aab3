#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A Loki push receiver for end-to-end tests: decodes every request (snappy, zstd or identity
# protobuf PushRequest, via the system's libsnappy/libzstd through ctypes) and appends one
# record per entry to an output file, which check_lines.py verifies. It can be told to answer
# 429 or 5xx (GET /control?mode=429|503|ok); "down" is the test stopping the process, which
# appends on restart. No dedup: it shows exactly what the agent sent.
import argparse
import ctypes
import ctypes.util
import http.server
import json
import os
import sys
import threading
from urllib.parse import parse_qs, urlparse

_snappy = ctypes.CDLL(ctypes.util.find_library("snappy") or "libsnappy.so.1")
_zstd = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so.1")
_zstd.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
_zstd.ZSTD_decompress.restype = ctypes.c_size_t
_zstd.ZSTD_isError.restype = ctypes.c_uint
MAX_RAW = 256 << 20


def snappy_decode(b):
    n = ctypes.c_size_t()
    if _snappy.snappy_uncompressed_length(b, ctypes.c_size_t(len(b)), ctypes.byref(n)) != 0:
        raise ValueError("bad snappy header")
    if n.value > MAX_RAW:
        raise ValueError("snappy body too large")
    out = ctypes.create_string_buffer(max(n.value, 1))
    if _snappy.snappy_uncompress(b, ctypes.c_size_t(len(b)), out, ctypes.byref(n)) != 0:
        raise ValueError("bad snappy body")
    return out.raw[: n.value]


def zstd_decode(b):
    size = _zstd.ZSTD_getFrameContentSize(b, ctypes.c_size_t(len(b)))
    if size >= (1 << 63):  # unknown or error
        size = MAX_RAW
    if size > MAX_RAW:
        raise ValueError("zstd body too large")
    out = ctypes.create_string_buffer(max(size, 1))
    r = _zstd.ZSTD_decompress(out, ctypes.c_size_t(size), b, ctypes.c_size_t(len(b)))
    if _zstd.ZSTD_isError(ctypes.c_size_t(r)):
        raise ValueError("bad zstd body")
    return out.raw[:r]


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        if c < 0x80:
            return v, i
        s += 7
        if s > 63:
            raise ValueError("varint too long")


def fields(b):
    """Yields (field, wiretype, value) of one protobuf message (value: int or bytes)."""
    i, n = 0, len(b)
    while i < n:
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            ln, i = varint(b, i)
            if i + ln > n:
                raise ValueError("truncated field")
            v = b[i : i + ln]
            i += ln
        elif wt == 1:
            v, i = b[i : i + 8], i + 8
        elif wt == 5:
            v, i = b[i : i + 4], i + 4
        else:
            raise ValueError("bad wire type %d" % wt)
        yield f, wt, v


def decode_push(raw):
    """Returns [(labels, ts_ns, line bytes)] of a PushRequest."""
    out = []
    for f, _, stream in fields(raw):
        if f != 1:
            continue
        labels, entries = "", []
        for sf, _, v in fields(stream):
            if sf == 1:
                labels = v.decode()
            elif sf == 2:
                ts, line = 0, b""
                for ef, _, ev in fields(v):
                    if ef == 1:
                        sec = nanos = 0
                        for tf, _, tv in fields(ev):
                            if tf == 1:
                                sec = tv
                            elif tf == 2:
                                nanos = tv
                        ts = sec * 1_000_000_000 + nanos
                    elif ef == 2:
                        line = ev
                entries.append((ts, line))
        out.extend((labels, ts, line) for ts, line in entries)
    return out


class State:
    def __init__(self, out_path):
        self.lock = threading.Lock()
        self.mode = "ok"
        self.out = open(out_path, "ab", buffering=1 << 20)
        self.requests = self.entries = self.refused = self.bad = 0


def record(labels, ts, line, batch):
    try:
        line.decode("utf-8")
        utf8 = 1
    except UnicodeDecodeError:
        utf8 = 0
    head = line[:160].decode("utf-8", "replace").replace("\t", " ").replace("\n", " ")
    return ("%s\t%s\t%d\t%d\t%d\t%s\n" % (batch, labels, ts, len(line), utf8, head)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None  # set in main

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        st = self.st
        if u.path == "/control":
            mode = parse_qs(u.query).get("mode", ["ok"])[0]
            with st.lock:
                st.mode = mode
            self.reply(200, b"mode=" + mode.encode() + b"\n")
        elif u.path == "/stats":
            with st.lock:
                st.out.flush()
                d = {"requests": st.requests, "entries": st.entries, "refused": st.refused,
                     "bad": st.bad, "mode": st.mode}
            self.reply(200, json.dumps(d).encode(), "application/json")
        elif u.path == "/-/ready":
            self.reply(200, b"ok\n")
        else:
            self.reply(404)

    def do_POST(self):
        st = self.st
        n = int(self.headers.get("Content-Length", "0"))
        if n < 0 or n > MAX_RAW:
            self.reply(413)
            return
        body = self.rfile.read(n)
        with st.lock:
            st.requests += 1
            mode = st.mode
        if mode != "ok":
            with st.lock:
                st.refused += 1
            code = int(mode) if mode.isdigit() else 503
            self.reply(code, b"told to refuse\n", extra=(("Retry-After", "1"),) if code == 429 else ())
            return
        enc = (self.headers.get("Content-Encoding") or "snappy").lower()
        try:
            raw = snappy_decode(body) if enc == "snappy" else zstd_decode(body) if enc == "zstd" else body
            entries = decode_push(raw)
        except (ValueError, IndexError) as e:
            with st.lock:
                st.bad += 1
            self.reply(400, ("bad push: %s\n" % e).encode())
            return
        batch = self.headers.get("X-Nines-Batch-Id", "-")
        data = b"".join(record(l, ts, line, batch) for l, ts, line in entries)
        with st.lock:
            st.out.write(data)
            st.entries += len(entries)
        self.reply(204)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--out", required=True, help="records file (appended)")
    ap.add_argument("--mode", default="ok")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    Handler.st = State(a.out)
    Handler.st.mode = a.mode
    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    import signal

    def stop(*_):
        threading.Thread(target=srv.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    srv.serve_forever()
    with Handler.st.lock:
        Handler.st.out.flush()
        Handler.st.out.close()


if __name__ == "__main__":
    sys.exit(main())
