#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Abuse at the HTTP level, below what curl lets a test send, for the fault suite
# (tests/integration/fault_hostile.sh): oversized and countless headers, a huge URL, broken
# chunked encoding, a body shorter than its Content-Length, a client that sends one byte a
# second (slowloris), an HTTP/2 preface followed by junk, thousands of idle connections.
"""Usage: hostile_http.py HOST:PORT CASE

Prints one JSON line: {"case", "status" (the HTTP status the server answered, or null),
"closed" (the server closed the connection), "secs" (until the answer or the close),
"head" (the first bytes of the answer)}. For idle_flood: {"case", "opened", "healthy_status",
"healthy_secs"}: a GET /-/healthy sent while 2,000 idle connections are held.

Cases: big_header, many_headers, long_url, bad_chunked, huge_chunk, short_body, slowloris,
h2_junk, junk_request, idle_flood."""

import json
import os
import resource
import select
import socket
import sys
import time

LIMIT_S = 40


def send_reading(s, data, deadline):
    """Sends data while reading whatever the server answers meanwhile. Returns (bytes read,
    whether the server closed its side, whether all of data was sent)."""
    got, view = b"", memoryview(data)
    s.setblocking(False)
    poll = select.poll()
    poll.register(s, select.POLLIN | select.POLLOUT)
    try:
        while view and time.monotonic() < deadline:
            ev = 0
            for _, e in poll.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                ev |= e
            r = ev & (select.POLLIN | select.POLLHUP | select.POLLERR)
            w = ev & select.POLLOUT
            if r:
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    d = None
                except OSError:
                    return got, True, False
                if d == b"":
                    return got, True, False
                if d:
                    got += d
            if w:
                try:
                    view = view[s.send(view):]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    return got, False, False
        return got, False, not view
    finally:
        s.setblocking(True)


def exchange(addr, chunks, delay=0.0, wait=LIMIT_S):
    """Sends chunks (with delay seconds between them) and reads until the server closes
    or wait passes. Returns (status, closed, secs, head)."""
    t0 = time.monotonic()
    s = socket.create_connection(addr, timeout=5)
    out, closed = b"", False
    try:
        for c in chunks:
            # Read while sending: a server that answers early (a 400 for 100,000 headers)
            # closes with our bytes unread, which resets the connection; the answer must be
            # read before the reset, as curl does ("error before end of send").
            got, eof, sent_all = send_reading(s, c, t0 + wait)
            out += got
            if eof:
                closed = True
                break
            if not sent_all:
                break
            if delay:
                s.settimeout(delay)
                try:
                    d = s.recv(65536)
                    if not d:
                        closed = True
                        break
                    out += d
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
            if time.monotonic() - t0 > wait:
                break
        while not closed and time.monotonic() - t0 < wait:
            s.settimeout(max(0.1, wait - (time.monotonic() - t0)))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not d:
                closed = True
                break
            out += d
            if b"\r\n\r\n" in out and b"Content-Length: " in out:
                head, body = out.split(b"\r\n\r\n", 1)
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(body) >= n:
                    break
    finally:
        s.close()
    secs = time.monotonic() - t0
    status = None
    if out.startswith(b"HTTP/1.1 ") and len(out) >= 12:
        try:
            status = int(out[9:12])
        except ValueError:
            status = None
    return status, closed, secs, out[:300].decode("latin-1")


def req(first, headers=b"", body=b""):
    return first + b"\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n" + body


def idle_flood(addr, n=2000):
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
    conns = []
    for _ in range(n):
        try:
            conns.append(socket.create_connection(addr, timeout=5))
        except OSError:
            break
    t0 = time.monotonic()
    status, _, _, _ = exchange(addr, [req(b"GET /-/healthy HTTP/1.1", b"Connection: close\r\n")],
                               wait=10)
    secs = time.monotonic() - t0
    for c in conns:
        c.close()
    return {"case": "idle_flood", "opened": len(conns), "healthy_status": status,
            "healthy_secs": round(secs, 3)}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    addr = (host, int(port))
    case = sys.argv[2]
    w = b"POST /api/v1/write HTTP/1.1"
    if case == "idle_flood":
        print(json.dumps(idle_flood(addr)))
        return 0
    if case == "big_header":
        r = exchange(addr, [req(b"GET /-/healthy HTTP/1.1", b"X-Big: " + b"a" * (1 << 20) + b"\r\n")])
    elif case == "many_headers":
        h = b"".join(b"X-H%d: v\r\n" % i for i in range(100000))
        r = exchange(addr, [req(b"GET /-/healthy HTTP/1.1", h)])
    elif case == "long_url":
        r = exchange(addr, [req(b"GET /api/v1/query?query=" + b"1" * (1 << 20) + b" HTTP/1.1")])
    elif case == "bad_chunked":
        r = exchange(addr, [req(w, b"Transfer-Encoding: chunked\r\n", b"zzzz\r\nabc\r\n")])
    elif case == "huge_chunk":
        # A chunk that announces 2^64-1 bytes: the server must stop at max_body_size.
        r = exchange(addr, [req(w, b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffff\r\n")]
                     + [b"\0" * 65536] * 128, wait=20)
    elif case == "short_body":
        r = exchange(addr, [req(w, b"Content-Length: 1000\r\n", b"abc")])
    elif case == "slowloris":
        data = req(b"GET /-/healthy HTTP/1.1", b"X-Slow: " + b"s" * 200 + b"\r\n")
        r = exchange(addr, [data[i : i + 1] for i in range(len(data))], delay=1.0)
    elif case == "h2_junk":
        r = exchange(addr, [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(65536)])
    elif case == "junk_request":
        r = exchange(addr, [os.urandom(4096) + b"\r\n\r\n"])
    else:
        sys.exit("unknown case " + case)
    status, closed, secs, head = r
    print(json.dumps({"case": case, "status": status, "closed": closed, "secs": round(secs, 3),
                      "head": head}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
