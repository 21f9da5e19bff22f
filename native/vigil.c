/*
 * Layer: native. The system calls Node cannot make itself, and nothing else.
 *
 *  - An AF_PACKET socket that sends and receives ARP frames (or, opened with
 *    ETH_P_IPV6, the frames of NDP) on one interface (no frame building, no
 *    policy, no timers: those live in src/net/arp/ and src/net/ndp/).
 *  - A netlink event socket for link and address changes (nlevents.c).
 *  - setns(2) for the main thread, so tests can open sockets inside a lab
 *    host's network namespace.
 *  - sd_notify over an AF_UNIX datagram socket (Node has no unix datagrams).
 *  - The Linux watchdog device ioctls, and flock(2) for the PID file.
 *
 * Errors cross into JS as Error objects carrying {errno, code, syscall}; the
 * TypeScript layer turns them into messages (EPERM → "needs CAP_NET_RAW").
 * Every call is checked; nothing here asserts on a syscall result.
 *
 * The contract is declared once in src/native-binding.d.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/watchdog.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "vigil.h"
#include "arp.h"

/* ---- N-API plumbing ---------------------------------------------------- */

void throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "N-API call failed: %s: %s", what,
           info && info->error_message ? info->error_message : "unknown");
  napi_throw_error(env, "EVIGILNAPI", msg);
}

/* Build an Error carrying {errno, code, syscall}. */
napi_value make_errno_error(napi_env env, int err, const char *syscall) {
  const char *code = uv_err_name(-err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err), code);
  napi_value jcode, jmsg, jerr, jerrno, jsys;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &jerr) != napi_ok ||
      napi_create_int32(env, err, &jerrno) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys) != napi_ok ||
      napi_set_named_property(env, jerr, "errno", jerrno) != napi_ok ||
      napi_set_named_property(env, jerr, "syscall", jsys) != napi_ok)
    return NULL;
  return jerr;
}

napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value e = make_errno_error(env, err, syscall);
  if (e) napi_throw(env, e);
  return NULL;
}

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EVIGILARG", msg);
  return NULL;
}

/* Read a string argument into buf; false (with a pending exception) if not a fitting string. */
static bool get_string(napi_env env, napi_value v, char *buf, size_t size, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    throw_type(env, msg);
    return false;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    throw_napi_failure(env, "napi_get_value_string_utf8");
    return false;
  }
  if (len + 1 >= size) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long", what);
    throw_type(env, msg);
    return false;
  }
  return true;
}

bool get_int(napi_env env, napi_value v, int32_t *out, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    throw_type(env, msg);
    return false;
  }
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    throw_napi_failure(env, "napi_get_value_int32");
    return false;
  }
  return true;
}

uint64_t monotonic_ns(void) {
  struct timespec ts;
  /* CLOCK_MONOTONIC cannot fail with a valid clock id; zero keeps callers sane if it ever did. */
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- ARP socket ---------------------------------------------------------- */

/* arp_sock and the constants it uses: arp.h (shared with arpwatch.c). */

/*
 * Classic BPF: drop our own transmissions (PACKET_OUTGOING, seen on a packet
 * socket bound to the interface) and anything that is not EtherType 0x0806
 * (instruction 3; an NDP socket opens with a copy that says 0x86DD).
 * The socket is also bound to that EtherType; the filter closes the window between
 * socket() and bind() and keeps the contract explicit.
 */
static struct sock_filter arp_filter_code[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 2, 0),
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, 0),
    BPF_STMT(BPF_RET | BPF_K, 0xffff),
};

void arp_handle_free(uv_handle_t *h) { free(h); }

/* Stop polling, close the fd, drop the JS references. Idempotent. */
static void arp_close(arp_sock *s) {
  if (s->closed) return;
  s->closed = true;
  arp_watch_close(s);
  if (s->poll) {
    uv_poll_stop(s->poll);
    uv_close((uv_handle_t *)s->poll, arp_handle_free);
    s->poll = NULL;
  }
  if (s->timer) {
    uv_timer_stop(s->timer);
    uv_close((uv_handle_t *)s->timer, arp_handle_free);
    s->timer = NULL;
  }
  if (s->fd >= 0) {
    close(s->fd); /* close(2) errors leave nothing to retry: the fd is gone either way */
    s->fd = -1;
  }
  if (s->on_frame) { napi_delete_reference(s->env, s->on_frame); s->on_frame = NULL; }
  if (s->on_error) { napi_delete_reference(s->env, s->on_error); s->on_error = NULL; }
  if (s->on_timer) { napi_delete_reference(s->env, s->on_timer); s->on_timer = NULL; }
  if (s->actx) { napi_async_destroy(s->env, s->actx); s->actx = NULL; }
  if (s->self) { napi_delete_reference(s->env, s->self); s->self = NULL; }
}

static void arp_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  arp_sock *s = data;
  arp_close(s);
  free(s);
}

/* Call a stored JS callback through MakeCallback; surface a throw as uncaught. */
void arp_call(arp_sock *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, recv, result;
  if (!fn_ref) return;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok) return;
  /* MakeCallback needs an object receiver (undefined throws a TypeError). */
  if (napi_get_global(env, &recv) != napi_ok) return;
  napi_make_callback(env, s->actx, recv, fn, argc, argv, &result);
  /* A throw from the callback must surface as uncaught, not linger as pending. */
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

static void arp_report_error(arp_sock *s, int err, const char *syscall) {
  napi_value e = make_errno_error(s->env, err, syscall);
  napi_ref cb = s->on_error;
  if (e && cb) {
    /* Keep the callback alive across close(), which drops our reference. */
    napi_value fn;
    napi_ref keep = NULL;
    if (napi_get_reference_value(s->env, cb, &fn) == napi_ok) napi_create_reference(s->env, fn, 1, &keep);
    arp_close(s);
    if (keep) {
      arp_call(s, keep, 1, &e);
      napi_delete_reference(s->env, keep);
    }
    return;
  }
  arp_close(s);
}

/*
 * Read up to s->drain queued frames and hand each to onFrame. From the poll
 * callback (`sync` false) through MakeCallback; from drainNow() (`sync`
 * true, JavaScript is on the stack) as a plain call whose throw propagates
 * to the caller. Returns the frames delivered.
 */
unsigned arp_read_frames(arp_sock *s, bool sync) {
  unsigned char buf[ARP_MAX_FRAME];
  unsigned delivered = 0;
  /* Bounded drain: at most s->drain frames, then yield to the loop. */
  for (unsigned n = 0; n < s->drain && !s->closed; n++) {
    struct sockaddr_ll from;
    socklen_t fromlen = sizeof from;
    ssize_t r;
    int tries = 0;
    do {
      r = recvfrom(s->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    } while (r < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      /* A fatal error is the poll callback's to report (it closes and calls onError). */
      if (!sync) arp_report_error(s, errno, "recvfrom");
      break;
    }
    uint64_t at = monotonic_ns();
    if (from.sll_pkttype == PACKET_OUTGOING) continue; /* belt and braces with the filter */
    size_t len = (size_t)r > sizeof buf ? sizeof buf : (size_t)r;
    /* The answer a native probe loop waits for ends there (arpwatch.c). */
    if (s->watch && arp_watch_take(s, buf, len, at)) continue;
    napi_handle_scope inner;
    if (napi_open_handle_scope(s->env, &inner) != napi_ok) break;
    napi_value argv[2];
    void *copy;
    bool threw = false;
    if (napi_create_buffer_copy(s->env, len, buf, &copy, &argv[0]) == napi_ok &&
        napi_create_bigint_uint64(s->env, at, &argv[1]) == napi_ok) {
      delivered++;
      if (!sync) {
        arp_call(s, s->on_frame, 2, argv);
      } else {
        napi_value fn, recv, result;
        if (s->on_frame && napi_get_reference_value(s->env, s->on_frame, &fn) == napi_ok &&
            napi_get_global(s->env, &recv) == napi_ok &&
            napi_call_function(s->env, recv, fn, 2, argv, &result) != napi_ok)
          threw = true;
      }
    }
    napi_close_handle_scope(s->env, inner);
    if (threw) break; /* the exception is pending for drainNow's caller */
    /* The callback may have closed us: the loop condition re-checks. */
  }
  return delivered;
}

static void arp_on_readable(uv_poll_t *h, int status, int events) {
  arp_sock *s = h->data;
  if (s->closed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  if (status < 0) {
    /* libuv reports a pending socket error as EBADF; the real one is in SO_ERROR. */
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0)
      arp_report_error(s, soerr, "SO_ERROR");
    else
      arp_report_error(s, -status, "uv_poll");
  } else if (events & UV_READABLE) {
    arp_read_frames(s, false);
  }
  napi_close_handle_scope(s->env, scope);
}

arp_sock *arp_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) {
    throw_napi_failure(env, "napi_get_cb_info");
    return NULL;
  }
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    throw_type(env, "not an ArpSocket");
    return NULL;
  }
  return data;
}

static napi_value arp_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  arp_sock *s = arp_unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (s->closed) return throw_errno(env, EBADF, "send");
  bool is_buf = false;
  NAPI_CALL(env, napi_is_buffer(env, argv[0], &is_buf));
  if (argc < 1 || !is_buf) return throw_type(env, "frame must be a Buffer");
  void *data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &data, &len));
  if (len < ETH_HLEN || len > ETH_FRAME_LEN) return throw_type(env, "frame must be a whole Ethernet frame (14..1514 bytes)");
  ssize_t r;
  int tries = 0;
  do {
    r = send(s->fd, data, len, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  if (r < 0) return throw_errno(env, errno, "send");
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, r, &out));
  return out;
}

static napi_value arp_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value self;
  void *data = NULL;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  NAPI_CALL(env, napi_unwrap(env, self, &data));
  arp_sock *s = data;
  if (s->closed) return throw_errno(env, EBADF, "uv_poll_start");
  if (s->poll) return throw_type(env, "ArpSocket already started");
  napi_valuetype t0, t1;
  NAPI_CALL(env, napi_typeof(env, argv[0], &t0));
  NAPI_CALL(env, napi_typeof(env, argv[1], &t1));
  if (argc < 2 || t0 != napi_function || t1 != napi_function) return throw_type(env, "start(onFrame, onError) needs two functions");
  napi_valuetype t2 = napi_undefined;
  if (argc >= 3) NAPI_CALL(env, napi_typeof(env, argv[2], &t2));
  if (t2 != napi_undefined && t2 != napi_function) return throw_type(env, "start's onTimer must be a function");

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  uv_poll_t *p = calloc(1, sizeof *p);
  if (!p) return throw_errno(env, ENOMEM, "calloc");
  int rc = uv_poll_init(loop, p, s->fd);
  if (rc < 0) {
    free(p);
    return throw_errno(env, -rc, "uv_poll_init");
  }
  p->data = s;
  rc = uv_poll_start(p, UV_READABLE, arp_on_readable);
  if (rc < 0) {
    uv_close((uv_handle_t *)p, arp_handle_free);
    return throw_errno(env, -rc, "uv_poll_start");
  }
  s->poll = p;
  napi_value name;
  NAPI_CALL(env, napi_create_string_utf8(env, "vigil:ArpSocket", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_async_init(env, self, name, &s->actx));
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &s->on_frame));
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &s->on_error));
  if (t2 == napi_function) NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &s->on_timer));
  NAPI_CALL(env, napi_create_reference(env, self, 1, &s->self));
  return NULL;
}

/* Never earlier than asked. libuv counts from the loop's cached "now",
 * taken when this loop iteration began: after a long iteration (a busy or
 * stalled process) that is many ms old and the timer would fire that much
 * early, shortening a probe's timeout. So refresh it first, round the wait
 * up to whole ms, and add 1 ms for the truncation of "now" to whole ms. */
int arp_timer_start(uv_timer_t *t, uv_timer_cb cb, double ms) {
  uv_update_time(t->loop);
  uint64_t whole = (uint64_t)ms;
  if ((double)whole < ms) whole++;
  return uv_timer_start(t, cb, whole + 1, 0);
}

static void arp_on_timer(uv_timer_t *t) {
  arp_sock *s = t->data;
  if (s->closed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  arp_call(s, s->on_timer, 0, NULL);
  napi_close_handle_scope(s->env, scope);
}

/*
 * armTimer(ms): call start()'s onTimer once, `ms` from now (libuv's loop
 * time, as Node's own timers), replacing an armed one. disarmTimer() stops
 * it. Why not setTimeout: a cleared Node timer still wakes the process at
 * its due time (Node re-arms its one libuv timer lazily), and a probe's
 * timeout is cleared at nearly every answer; uv_timer_stop really stops.
 */
static napi_value arp_arm_timer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  arp_sock *s = arp_unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (s->closed) return throw_errno(env, EBADF, "uv_timer_start");
  if (!s->on_timer) return throw_type(env, "armTimer needs start()'s onTimer callback");
  double ms = 0;
  if (argc < 1 || napi_get_value_double(env, argv[0], &ms) != napi_ok || !(ms >= 0) || ms > 4294967295.0)
    return throw_type(env, "armTimer(ms) needs a number of milliseconds >= 0");
  if (!s->timer) {
    uv_loop_t *loop;
    NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
    uv_timer_t *t = calloc(1, sizeof *t);
    if (!t) return throw_errno(env, ENOMEM, "calloc");
    int rc = uv_timer_init(loop, t);
    if (rc < 0) {
      free(t);
      return throw_errno(env, -rc, "uv_timer_init");
    }
    t->data = s;
    s->timer = t;
  }
  int rc = arp_timer_start(s->timer, arp_on_timer, ms);
  if (rc < 0) return throw_errno(env, -rc, "uv_timer_start");
  return NULL;
}

static napi_value arp_disarm_timer(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  if (s->timer) uv_timer_stop(s->timer);
  return NULL;
}

/*
 * setFilter(program): replace the socket's classic BPF filter with
 * `program` (struct sock_filter[] in host byte order, built by
 * src/net/arp/filter.ts). SO_ATTACH_FILTER swaps the program atomically:
 * every frame is judged by the old or the new one, never by neither. The
 * kernel verifies the program; a bad one is refused and the old one stays.
 */
static napi_value arp_set_filter(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  arp_sock *s = arp_unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (s->closed) return throw_errno(env, EBADF, "setsockopt(SO_ATTACH_FILTER)");
  bool is_buf = false;
  if (argc < 1) return throw_type(env, "setFilter(program) needs a Buffer");
  NAPI_CALL(env, napi_is_buffer(env, argv[0], &is_buf));
  if (!is_buf) return throw_type(env, "setFilter(program) needs a Buffer");
  void *data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &data, &len));
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return throw_type(env, "program must be 1..4096 whole sock_filter instructions");
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = data};
  if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return throw_errno(env, errno, "setsockopt(SO_ATTACH_FILTER)");
  return NULL;
}

/*
 * membership(mac, join): PACKET_ADD_MEMBERSHIP / PACKET_DROP_MEMBERSHIP with
 * PACKET_MR_MULTICAST (packet(7)): the interface accepts frames to the
 * multicast MAC `mac` for as long as this socket holds the membership (the
 * kernel drops it when the fd closes). NDP needs it for the solicited-node
 * group of an address nobody on this host holds yet.
 */
static napi_value arp_membership(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  arp_sock *s = arp_unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 2) return throw_type(env, "membership(mac, join) needs a 6-byte Buffer and a boolean");
  if (s->closed) return throw_errno(env, EBADF, "setsockopt(PACKET_ADD_MEMBERSHIP)");
  bool is_buf = false;
  NAPI_CALL(env, napi_is_buffer(env, argv[0], &is_buf));
  if (!is_buf) return throw_type(env, "membership(mac, join) needs a 6-byte Buffer");
  void *data;
  size_t len;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &data, &len));
  if (len != 6 || (((uint8_t *)data)[0] & 1) == 0) return throw_type(env, "membership mac must be 6 bytes of a multicast address");
  bool join = false;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &join));
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = s->ifindex;
  mr.mr_type = PACKET_MR_MULTICAST;
  mr.mr_alen = 6;
  memcpy(mr.mr_address, data, 6);
  int opt = join ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
  if (setsockopt(s->fd, SOL_PACKET, opt, &mr, sizeof mr) < 0)
    return throw_errno(env, errno, join ? "setsockopt(PACKET_ADD_MEMBERSHIP)" : "setsockopt(PACKET_DROP_MEMBERSHIP)");
  return NULL;
}

/*
 * drainNow(): deliver the frames already queued on the socket at once, as the
 * next poll phase would (same onFrame, same receive timestamps), and return
 * how many. A probe calls it right after its send: an answer that came back
 * within the send (a peer on the same host, a fast LAN) then needs neither
 * another loop iteration nor a timeout timer, which Node would still wake up
 * for after it was cleared. Nothing queued: a recvfrom returning EAGAIN.
 */
static napi_value arp_drain_now(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  unsigned n = 0;
  if (!s->closed && s->poll) n = arp_read_frames(s, true);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, n, &out));
  return out;
}

static napi_value arp_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  arp_close(s);
  return NULL;
}

static napi_value arp_closed_get(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, s->closed, &out));
  return out;
}

/* openArpSocket(ifname, drain?, ethertype?) — ethertype ETH_P_ARP (default) or ETH_P_IPV6 (NDP). */
static napi_value open_arp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "openArpSocket(ifname, drain?, ethertype?) needs an interface name");
  char ifname[IFNAMSIZ + 1];
  if (!get_string(env, argv[0], ifname, sizeof ifname, "ifname")) return NULL;
  int32_t drain = ARP_DEFAULT_DRAIN;
  if (argc >= 2) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[1], &t));
    if (t != napi_undefined && !get_int(env, argv[1], &drain, "drain")) return NULL;
    if (drain < 1 || drain > 4096) return throw_type(env, "drain must be 1..4096");
  }
  int32_t ethertype = ETH_P_ARP;
  if (argc >= 3) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[2], &t));
    if (t != napi_undefined && !get_int(env, argv[2], &ethertype, "ethertype")) return NULL;
    if (ethertype != ETH_P_ARP && ethertype != ETH_P_IPV6) return throw_type(env, "ethertype must be 0x0806 (ARP) or 0x86dd (IPv6)");
  }
  if (ifname[0] == '\0' || strlen(ifname) >= IFNAMSIZ) return throw_type(env, "ifname must be 1..15 characters");

  unsigned ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, errno == 0 ? ENODEV : errno, "if_nametoindex");

  /* Protocol 0: receive nothing until bind() names the EtherType, after the filter is on. */
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");

  /* The opening filter with this socket's EtherType (a copy: the table is shared). */
  struct sock_filter code[sizeof arp_filter_code / sizeof arp_filter_code[0]];
  memcpy(code, arp_filter_code, sizeof code);
  code[3].k = (uint32_t)ethertype;
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "setsockopt(SO_ATTACH_FILTER)");
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "ioctl(SIOCGIFHWADDR)");
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons((uint16_t)ethertype);
  sll.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "bind");
  }

  arp_sock *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, ENOMEM, "calloc");
  }
  s->fd = fd;
  s->ifindex = (int)ifindex;
  memcpy(s->mac, ifr.ifr_hwaddr.sa_data, 6);
  s->drain = (unsigned)drain;
  s->env = env;

  napi_value obj, jidx, jmac, fsend, fstart, fclose, ffilter, fmember, fdrain, farm, fdisarm, fwatch, funwatch, fwstate;
  if (napi_create_object(env, &obj) != napi_ok || napi_wrap(env, obj, s, arp_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(s);
    throw_napi_failure(env, "napi_wrap");
    return NULL;
  }
  /* From here the finalizer owns s and its fd. */
  void *macdata;
  NAPI_CALL(env, napi_create_int32(env, s->ifindex, &jidx));
  NAPI_CALL(env, napi_create_buffer_copy(env, 6, s->mac, &macdata, &jmac));
  NAPI_CALL(env, napi_create_function(env, "send", NAPI_AUTO_LENGTH, arp_send, NULL, &fsend));
  NAPI_CALL(env, napi_create_function(env, "start", NAPI_AUTO_LENGTH, arp_start, NULL, &fstart));
  NAPI_CALL(env, napi_create_function(env, "close", NAPI_AUTO_LENGTH, arp_close_js, NULL, &fclose));
  NAPI_CALL(env, napi_create_function(env, "setFilter", NAPI_AUTO_LENGTH, arp_set_filter, NULL, &ffilter));
  NAPI_CALL(env, napi_create_function(env, "membership", NAPI_AUTO_LENGTH, arp_membership, NULL, &fmember));
  NAPI_CALL(env, napi_create_function(env, "drainNow", NAPI_AUTO_LENGTH, arp_drain_now, NULL, &fdrain));
  NAPI_CALL(env, napi_create_function(env, "armTimer", NAPI_AUTO_LENGTH, arp_arm_timer, NULL, &farm));
  NAPI_CALL(env, napi_create_function(env, "disarmTimer", NAPI_AUTO_LENGTH, arp_disarm_timer, NULL, &fdisarm));
  NAPI_CALL(env, napi_create_function(env, "watch", NAPI_AUTO_LENGTH, arp_watch_js, NULL, &fwatch));
  NAPI_CALL(env, napi_create_function(env, "unwatch", NAPI_AUTO_LENGTH, arp_unwatch_js, NULL, &funwatch));
  NAPI_CALL(env, napi_create_function(env, "watchState", NAPI_AUTO_LENGTH, arp_watch_state_js, NULL, &fwstate));
  napi_property_descriptor props[] = {
      {"setFilter", NULL, NULL, NULL, NULL, ffilter, napi_default, NULL},
      {"membership", NULL, NULL, NULL, NULL, fmember, napi_default, NULL},
      {"drainNow", NULL, NULL, NULL, NULL, fdrain, napi_default, NULL},
      {"armTimer", NULL, NULL, NULL, NULL, farm, napi_default, NULL},
      {"disarmTimer", NULL, NULL, NULL, NULL, fdisarm, napi_default, NULL},
      {"watch", NULL, NULL, NULL, NULL, fwatch, napi_default, NULL},
      {"unwatch", NULL, NULL, NULL, NULL, funwatch, napi_default, NULL},
      {"watchState", NULL, NULL, NULL, NULL, fwstate, napi_default, NULL},
      {"ifindex", NULL, NULL, NULL, NULL, jidx, napi_enumerable, NULL},
      {"mac", NULL, NULL, NULL, NULL, jmac, napi_enumerable, NULL},
      {"send", NULL, NULL, NULL, NULL, fsend, napi_default, NULL},
      {"start", NULL, NULL, NULL, NULL, fstart, napi_default, NULL},
      {"close", NULL, NULL, NULL, NULL, fclose, napi_default, NULL},
      {"closed", NULL, NULL, arp_closed_get, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, obj, sizeof props / sizeof props[0], props));
  return obj;
}

/* ---- clock, namespaces, notify, watchdog ---------------------------------- */

static napi_value monotonic_ns_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  NAPI_CALL(env, napi_create_bigint_uint64(env, monotonic_ns(), &out));
  return out;
}

static napi_value netns_enter(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "netnsEnter(path) needs a path");
  char path[4096];
  if (!get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  /* thread-self: setns(2) moves only the calling thread. */
  int old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (old < 0) return throw_errno(env, errno, "open(/proc/thread-self/ns/net)");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    close(old);
    return throw_errno(env, e, "open(netns)");
  }
  if (setns(fd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(fd);
    close(old);
    return throw_errno(env, e, "setns");
  }
  close(fd);
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, old, &out));
  return out;
}

static napi_value netns_restore(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd, "fd")) return NULL;
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc < 0) return throw_errno(env, e, "setns");
  return NULL;
}

/* sdNotify(path, state): one datagram to NOTIFY_SOCKET ('@' = abstract name). */
static napi_value sd_notify_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "sdNotify(path, state) needs two strings");
  struct sockaddr_un sun;
  char path[sizeof sun.sun_path + 1];
  char state[4096];
  if (!get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  if (!get_string(env, argv[1], state, sizeof state, "state")) return NULL;
  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof sun.sun_path) return throw_type(env, "notify socket path must be 1..107 bytes");
  if (path[0] != '/' && path[0] != '@') return throw_type(env, "notify socket path must be absolute or start with '@'");
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, plen);
  if (path[0] == '@') sun.sun_path[0] = '\0'; /* abstract namespace */
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_UNIX)");
  ssize_t r;
  int tries = 0;
  do {
    r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, salen);
  } while (r < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  int e = errno;
  close(fd);
  if (r < 0) return throw_errno(env, e, "sendto(NOTIFY_SOCKET)");
  return NULL;
}

static napi_value wd_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4096];
  if (argc < 1 || !get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open(watchdog)");
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, fd, &out));
  return out;
}

static napi_value wd_set_timeout(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, secs;
  if (argc < 2 || !get_int(env, argv[0], &fd, "fd") || !get_int(env, argv[1], &secs, "seconds")) return NULL;
  int t = secs;
  if (ioctl(fd, WDIOC_SETTIMEOUT, &t) < 0) return throw_errno(env, errno, "ioctl(WDIOC_SETTIMEOUT)");
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, t, &out));
  return out;
}

static napi_value wd_keepalive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd, "fd")) return NULL;
  int dummy = 0;
  if (ioctl(fd, WDIOC_KEEPALIVE, &dummy) < 0) return throw_errno(env, errno, "ioctl(WDIOC_KEEPALIVE)");
  return NULL;
}

static napi_value wd_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  bool disarm = false;
  if (argc < 2 || !get_int(env, argv[0], &fd, "fd")) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &disarm));
  if (disarm) {
    /* Magic close: the driver disarms only if 'V' is the last byte written. */
    ssize_t r;
    int tries = 0;
    do {
      r = write(fd, "V", 1);
    } while (r < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
    if (r < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, e, "write(watchdog magic)");
    }
  }
  if (close(fd) < 0) return throw_errno(env, errno, "close(watchdog)");
  return NULL;
}

/* flockExclusive(fd): true if this process now holds LOCK_EX, false if another does. */
static napi_value flock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd, "fd")) return NULL;
  int rc;
  int tries = 0;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  if (rc < 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock");
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, rc == 0, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openArpSocket", NULL, open_arp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"openNetlinkEvents", NULL, open_netlink_events, NULL, NULL, NULL, napi_default, NULL},
      {"monotonicNs", NULL, monotonic_ns_js, NULL, NULL, NULL, napi_default, NULL},
      {"netnsEnter", NULL, netns_enter, NULL, NULL, NULL, napi_default, NULL},
      {"netnsRestore", NULL, netns_restore, NULL, NULL, NULL, napi_default, NULL},
      {"sdNotify", NULL, sd_notify_js, NULL, NULL, NULL, napi_default, NULL},
      {"watchdogOpen", NULL, wd_open, NULL, NULL, NULL, napi_default, NULL},
      {"watchdogSetTimeout", NULL, wd_set_timeout, NULL, NULL, NULL, napi_default, NULL},
      {"watchdogKeepalive", NULL, wd_keepalive, NULL, NULL, NULL, napi_default, NULL},
      {"watchdogClose", NULL, wd_close, NULL, NULL, NULL, napi_default, NULL},
      {"flockExclusive", NULL, flock_exclusive, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
