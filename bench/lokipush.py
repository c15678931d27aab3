#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Loki push load for the log WAL group-commit check (docs/performance.md, agglogs): CONNS
# processes, one keep-alive connection each, push JSON batches of LINES lines (4 streams,
# ~230 B a line, unique timestamps) to 127.0.0.1:PORT for DUR seconds, each waiting for its
# 204 before the next. Not run by bench/run. Usage: lokipush.py PORT CONNS DUR LINES
# Prints pushes/s and lines/s; count fsyncs with strace -f -c --seccomp-bpf -e
# trace=fsync,fdatasync on the aggregator, or nines_logstore_wal_fsyncs_total.
import http.client, json, multiprocessing as mp, sys, time

def worker(port, wid, dur, lines, q):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    base = time.time_ns() + wid * 10**12
    n = 0
    pad = "x" * 200
    end = time.time() + dur
    while time.time() < end:
        streams = []
        per = lines // 4
        for s in range(4):
            ts = base + n * lines + s * per
            streams.append({"stream": {"job": "bench", "w": str(wid), "s": str(s)},
                            "values": [[str(ts + i), '{"msg":"req %d","pad":"%s"}' % (i, pad)] for i in range(per)]})
        body = json.dumps({"streams": streams}).encode()
        conn.request("POST", "/loki/api/v1/push", body, {"Content-Type": "application/json"})
        r = conn.getresponse(); r.read()
        if r.status != 204:
            print("status", r.status, file=sys.stderr); break
        n += 1
    q.put(n)

if __name__ == "__main__":
    port, conns, dur, lines = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(port, i, dur, lines, q)) for i in range(conns)]
    t0 = time.time()
    for p in ps: p.start()
    tot = sum(q.get() for _ in ps)
    for p in ps: p.join()
    el = dur
    print(f"conns={conns} pushes/s={tot/el:.1f} lines/s={tot*lines/el:.0f}")
