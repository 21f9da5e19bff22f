#!/usr/bin/env python3
"""Test support: stand in for systemd's notify socket.

Binds an AF_UNIX datagram socket at the path given (a file system path, or
'@name' for the abstract namespace, which is per network namespace), prints
one JSON line {"ready": true} once bound, then one JSON line per datagram
received: {"t": <CLOCK_MONOTONIC ms>, "msg": "<datagram text>"}. Exits on
SIGTERM/SIGINT, removing a path socket. Node cannot bind unix datagram
sockets, hence Python.
"""
import json
import os
import signal
import socket
import sys
import time


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: notify-listen.py PATH|@NAME", file=sys.stderr)
        return 2
    name = sys.argv[1]
    addr = "\0" + name[1:] if name.startswith("@") else name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)

    def done(*_args):
        if not name.startswith("@"):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    signal.signal(signal.SIGINT, done)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        data = sock.recv(65536)
        print(json.dumps({"t": time.monotonic() * 1000, "msg": data.decode("utf-8", "replace")}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
