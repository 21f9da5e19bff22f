/**
 * Layer: native contract. The one declaration of what `native/vigil.c`
 * exports; `src/native.ts` is its single loader. Every function throws
 * `{errno, code, syscall, message}` on a failed system call.
 */

/** An AF_PACKET socket bound to one interface, receiving only ARP frames. */
export interface NativeArpSocket {
  /** Interface index the socket is bound to. */
  readonly ifindex: number;
  /** The interface's hardware address (6 bytes), read at open. */
  readonly mac: Buffer;
  /**
   * Send one whole Ethernet frame (destination MAC, source MAC, EtherType,
   * payload). Returns bytes sent. Throws EAGAIN when the queue is full.
   */
  send(frame: Buffer): number;
  /**
   * Start delivering received frames: `onFrame(frame, receivedAtNs)` once per
   * frame, at most `drain` frames per readable event (bounded work). The
   * Buffer is the frame from its Ethernet header; the time is
   * CLOCK_MONOTONIC in nanoseconds (bigint) taken at recv.
   * `onError` gets a fatal poll/recv error; the socket is then closed.
   */
  start(onFrame: (frame: Buffer, receivedAtNs: bigint) => void, onError: (err: Error) => void, onTimer?: () => void): void;
  /**
   * Call start()'s `onTimer` once, `ms` from now (libuv loop time, like
   * Node's timers; a fraction rounds up), replacing an armed one. Unlike a
   * cleared setTimeout, a disarmed timer never wakes the process. Needs
   * onTimer; throws EBADF once closed. Optional: a test double may leave it out.
   */
  armTimer?(ms: number): void;
  /** Stop the armed timer, if any. */
  disarmTimer?(): void;
  /** Stop polling and close the fd. Idempotent; safe from inside onFrame. */
  close(): void;
  /**
   * Deliver the frames already queued (at most `drain`) to onFrame now,
   * synchronously, as the next poll phase would; returns how many. Before
   * start() or after close(): 0. A throw from onFrame propagates. Optional
   * in the contract so a test double may leave it out (nothing is ever queued then).
   */
  drainNow?(): number;
  /**
   * Replace the socket's BPF filter (SO_ATTACH_FILTER, atomic): `program`
   * is struct sock_filter[] in host byte order (src/net/arp/filter.ts).
   */
  setFilter(program: Buffer): void;
  /**
   * Join (`true`) or leave the link-layer multicast group `mac` (6 bytes,
   * group bit set): setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP /
   * PACKET_DROP_MEMBERSHIP, PACKET_MR_MULTICAST). Held until the fd closes.
   */
  membership(mac: Buffer, join: boolean): void;
  /**
   * The native steady-state probe loop (native/arpwatch.c): each round waits
   * `everyMs`, sends `frame`, and waits up to `timeoutMs`. With `mac` (a
   * 6-byte Buffer) a round passes on an ARP reply from `ip` (4 bytes) at
   * `mac` addressed to us, which is taken natively and never reaches
   * onFrame; with `mac` null it passes once sent (silence expected: any
   * answer reaches onFrame, whose caller stops the watch).
   * `onEnd(kind, rounds, rttsMs, errno)` once: kind 0 all `rounds` (1..1000)
   * passed, 1 no answer by a timeout (after a drain), 2 the send failed.
   * Replaces a running watch. Optional: a test double may leave it out.
   */
  watch?(frame: Buffer, ip: Buffer, mac: Buffer | null, everyMs: number, timeoutMs: number, rounds: number,
    onEnd: (kind: 0 | 1 | 2, rounds: number, rttsMs: Float64Array, errno: number) => void,
    extraFrames?: Buffer[], anyIps?: Buffer): void;
  /** Stop the watch without calling onEnd; true if one was running. */
  unwatch?(): boolean;
  /** The watch's counters (undefined before the first watch). */
  watchState?(): NativeWatchState | undefined;
  /** True once closed. */
  readonly closed: boolean;
}

/** What {@link NativeArpSocket.watchState} reports. */
export interface NativeWatchState {
  /** A watch is running. */
  active: boolean;
  /** Rounds passed in the current (or last) watch. */
  rounds: number;
  /** Of those, answered ones (their round trips are kept). */
  answered: number;
  /** CLOCK_MONOTONIC ns of the last round that passed (0: none yet). */
  lastRoundNs: bigint;
  /** Round trip of the last answer taken, ms. */
  lastRttMs: number;
  /** Rounds passed and answers taken since the socket opened. */
  totalRounds: number;
  taken: number;
}

/**
 * A NETLINK_ROUTE socket that only listens to multicast groups (RTNLGRP_*):
 * large receive buffer (SO_RCVBUFFORCE), NETLINK_NO_ENOBUFS, polled by libuv.
 * An overrun never becomes an error: it is reported through `onOverflow`
 * (the socket's drop counter moved), and the owner re-reads the state.
 */
export interface NativeNetlinkEvents {
  /** The socket's netlink port id (nl_pid). */
  readonly port: number;
  /** The receive buffer the kernel granted, in bytes (SO_RCVBUF reads back twice the asked size). */
  readonly rcvbufBytes: number;
  /**
   * Start delivering: `onDatagram(buf)` once per datagram (may hold several
   * netlink messages), at most `drain` per readable event; `onOverflow()`
   * after a drain during which events were lost; `onError` on a fatal
   * poll/recv error, after which the socket is closed.
   */
  start(onDatagram: (buf: Buffer) => void, onOverflow: () => void, onError: (err: Error) => void): void;
  /** Join (`true`) or leave a multicast group. */
  membership(group: number, join: boolean): void;
  /** Whether the socket keeps the event loop alive (default true once started). */
  ref(keepAlive: boolean): void;
  /** Stop polling and close the fd. Idempotent; safe from inside a callback. */
  close(): void;
  readonly closed: boolean;
}

export interface NativeBinding {
  /**
   * Open a netlink event socket in the calling thread's namespace, joined to
   * `groups` (RTNLGRP_* numbers, may be empty), asking for `rcvbufBytes` of
   * receive buffer. `drain` caps datagrams read per readable event (default 64).
   */
  openNetlinkEvents(groups: number[], rcvbufBytes: number, drain?: number): NativeNetlinkEvents;
  /**
   * Open an ARP socket on `ifname`: socket(AF_PACKET, SOCK_RAW|SOCK_NONBLOCK|
   * SOCK_CLOEXEC, ETH_P_ARP), a BPF filter passing only ARP, bound to the
   * interface's ifindex. `drain` caps frames read per readable event.
   * `ethertype` 0x86DD opens the same socket for IPv6 (NDP) instead: bound to
   * ETH_P_IPV6, its opening filter passing only 0x86DD.
   */
  openArpSocket(ifname: string, drain?: number, ethertype?: number): NativeArpSocket;
  /** CLOCK_MONOTONIC now, in nanoseconds. */
  monotonicNs(): bigint;
  /**
   * Move the calling (main) thread into the network namespace at `path`
   * (for example `/run/netns/NAME`). Returns an fd for the previous namespace,
   * to pass to {@link NativeBinding.netnsRestore}. Sockets opened meanwhile
   * stay in the namespace they were opened in. For tests and the lab.
   */
  netnsEnter(path: string): number;
  /** Return to the namespace `fd` (from netnsEnter) refers to, and close it. */
  netnsRestore(fd: number): void;
  /**
   * Send one datagram `state` (for example "READY=1") to the systemd notify
   * socket `path` (a filesystem path, or `@name` for an abstract socket).
   */
  sdNotify(path: string, state: string): void;
  /** Open a watchdog device (O_WRONLY|O_CLOEXEC); returns the fd. */
  watchdogOpen(path: string): number;
  /** Set the device timeout in seconds (WDIOC_SETTIMEOUT); returns what the driver took. */
  watchdogSetTimeout(fd: number, seconds: number): number;
  /** Pet the watchdog (WDIOC_KEEPALIVE). */
  watchdogKeepalive(fd: number): void;
  /** Close the device, writing the magic 'V' first when `disarm` is true. */
  watchdogClose(fd: number, disarm: boolean): void;
  /**
   * flock(fd, LOCK_EX|LOCK_NB): true when this process now holds the lock,
   * false when another process holds it. The lock lives as long as the fd.
   */
  flockExclusive(fd: number): boolean;
}
