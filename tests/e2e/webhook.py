#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# A local Alertmanager webhook receiver for the alerting tests: listens on 127.0.0.1, and
# appends every notification it receives (Alertmanager's webhook JSON, one per line, with the
# receive time added as "_received") to a file, so a test can count notifications per alert
# and status. Stops on SIGTERM.
"""Usage: webhook.py PORT OUTFILE"""

import http.server
import json
import signal
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    out = None
    lock = threading.Lock()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > 16 << 20:
            self.send_response(413)
            self.end_headers()
            return
        body = self.rfile.read(n)
        try:
            msg = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        msg["_received"] = time.time()
        with Handler.lock:
            Handler.out.write(json.dumps(msg) + "\n")
            Handler.out.flush()
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, fmt, *args):
        pass


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    Handler.out = open(sys.argv[2], "a", buffering=1)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
