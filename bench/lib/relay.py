#!/usr/bin/env python3
"""A seeded, lossy, delaying Ethernet relay between two interfaces (bench only).

The test machines' kernels have neither netem nor tc classifiers, so the chaos
bench puts this in a lab link instead: the host's bridge-side veth end and a
new veth end on the bridge are joined by two AF_PACKET sockets; every frame
that arrives on one side is dropped with probability LOSS or sent out of the
other side DELAY_MS (+ up to JITTER_MS) later. Frames the relay sends itself
show up on its sockets as outgoing and are skipped.

usage: relay.py IF_A IF_B LOSS DELAY_MS JITTER_MS SEED
Prints "ready" once both sockets are bound; on SIGTERM prints
"forwarded N dropped M" and exits 0.
"""
import heapq
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_socket(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def main():
    if_a, if_b, loss, delay_ms, jitter_ms, seed = sys.argv[1:7]
    loss, delay_s, jitter_s = float(loss), float(delay_ms) / 1000, float(jitter_ms) / 1000
    if not 0 <= loss < 1:
        sys.exit("relay: LOSS must be in [0, 1)")
    rng = random.Random(int(seed))
    sa, sb = open_socket(if_a), open_socket(if_b)
    peer = {sa.fileno(): sb, sb.fileno(): sa}
    stats = {"forwarded": 0, "dropped": 0}
    running = [True]

    def on_term(_sig, _frame):
        running[0] = False

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("ready", flush=True)
    queue = []  # (due, seq, out socket, frame)
    seq = 0
    while running[0]:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.5
        try:
            readable, _, _ = select.select([sa, sb], [], [], timeout)
        except InterruptedError:
            continue
        for s in readable:
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if rng.random() < loss:
                    stats["dropped"] += 1
                    continue
                due = time.monotonic() + delay_s + (rng.uniform(0, jitter_s) if jitter_s > 0 else 0)
                heapq.heappush(queue, (due, seq, peer[s.fileno()], frame))
                seq += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
                stats["forwarded"] += 1
            except OSError:
                stats["dropped"] += 1  # the other side went down meanwhile
    print("forwarded %d dropped %d" % (stats["forwarded"], stats["dropped"]), flush=True)


if __name__ == "__main__":
    main()
