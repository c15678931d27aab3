#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes numbered CRI log lines ("<RFC3339Nano> <stream> <P|F> seq=<n> s=<stream> ...") to one
# file, as fast as it can or at a given rate, with some entries split into P fragments
# (finished by an F), and optionally rotates the file every --rotate-every seconds,
# alternating rename+create and copytruncate. Line n carries timestamp t0 + n µs, so every
# entry has a distinct timestamp and the receiver's order can be checked. copytruncate is
# lossless only if the tailer has read everything before the truncate (logrotate's own
# window is inherently lossy), so before truncating the writer waits until the agent's
# nines_agent_read_bytes_total has reached the bytes written to the live file (--metrics).
import argparse
import os
import re
import shutil
import sys
import time
import urllib.request

READ_RE = re.compile(rb"^nines_agent_read_bytes_total (\S+)$", re.M)


def agent_read_bytes(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            m = READ_RE.search(r.read())
        return int(float(m.group(1))) if m else -1
    except OSError:
        return -1


def ts_text(ns):
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % frac


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--path", required=True)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--first", type=int, default=0, help="first sequence number")
    ap.add_argument("--rate", type=float, default=0, help="lines per second; 0: as fast as possible")
    ap.add_argument("--chunk", type=int, default=500, help="lines per write(2)")
    ap.add_argument("--partial-every", type=int, default=7, help="every Nth entry as P fragments (0: none)")
    ap.add_argument("--stderr-every", type=int, default=5, help="every Nth entry on stderr (0: none)")
    ap.add_argument("--pad", type=int, default=60, help="filler bytes per entry")
    ap.add_argument("--random-pad", action="store_true",
                    help="hex filler from os.urandom, so spool/queue compression cannot hide volume")
    ap.add_argument("--rotate-every", type=float, default=0, help="seconds; 0: never")
    ap.add_argument("--copytruncate", action="store_true", help="alternate rename and copytruncate")
    ap.add_argument("--metrics", help="agent /metrics URL (required with --copytruncate)")
    ap.add_argument("--catchup-timeout", type=float, default=60)
    ap.add_argument("--t0-ns", type=int, default=0, help="timestamp of line 0 (default: now - 60 s)")
    a = ap.parse_args()
    if a.copytruncate and not a.metrics:
        ap.error("--copytruncate needs --metrics")
    t0 = a.t0_ns or (time.time_ns() - 60_000_000_000)
    pad = ("x" * a.pad).encode()
    fd = os.open(a.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    live_written = 0  # bytes in files the agent tails, over all of them (copies excluded)
    rotations = {"rename": 0, "copytruncate": 0}
    next_rot = time.monotonic() + a.rotate_every if a.rotate_every else None
    start = time.monotonic()
    n = a.first
    end = a.first + a.lines
    while n < end:
        buf = []
        for _ in range(min(a.chunk, end - n)):
            stream = "stderr" if a.stderr_every and n % a.stderr_every == 1 else "stdout"
            filler = os.urandom(a.pad // 2).hex().encode() if a.random_pad else pad
            msg = b"seq=%d s=%s %s" % (n, stream.encode(), filler)
            ts = ts_text(t0 + n * 1000).encode()
            if a.partial_every and n % a.partial_every == 3:
                third = len(msg) // 3
                parts = [msg[:third], msg[third : 2 * third], msg[2 * third :]]
                for i, p in enumerate(parts):
                    tag = b"F" if i == len(parts) - 1 else b"P"
                    buf.append(b"%s %s %s %s\n" % (ts, stream.encode(), tag, p))
            else:
                buf.append(b"%s %s F %s\n" % (ts, stream.encode(), msg))
            n += 1
        data = b"".join(buf)
        os.write(fd, data)
        live_written += len(data)
        if a.rate:
            ahead = (n - a.first) / a.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        if next_rot is not None and time.monotonic() >= next_rot:
            if a.copytruncate and (rotations["rename"] + rotations["copytruncate"]) % 2 == 1:
                # The copy (.1) does not match the agent's glob; wait for the agent to have read
                # everything, then copy and truncate as logrotate does.
                deadline = time.monotonic() + a.catchup_timeout
                while agent_read_bytes(a.metrics) < live_written:
                    if time.monotonic() > deadline:
                        print("writer: agent did not catch up before copytruncate", file=sys.stderr)
                        return 1
                    time.sleep(0.01)
                # Copy to a new inode: the old .1 may still be open in the agent.
                shutil.copyfile(a.path, a.path + ".tmp")
                os.replace(a.path + ".tmp", a.path + ".1")
                os.ftruncate(fd, 0)
                rotations["copytruncate"] += 1
            else:
                try:
                    os.unlink(a.path + ".2")
                except FileNotFoundError:
                    pass
                if os.path.exists(a.path + ".1"):
                    os.rename(a.path + ".1", a.path + ".2")
                os.rename(a.path, a.path + ".1")
                os.close(fd)
                fd = os.open(a.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                rotations["rename"] += 1
            next_rot = time.monotonic() + a.rotate_every
    os.close(fd)
    print("lines=%d bytes=%d renames=%d copytruncates=%d seconds=%.2f"
          % (a.lines, live_written, rotations["rename"], rotations["copytruncate"],
             time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
