/*
 * Layer: native. A NETLINK_ROUTE socket that only listens: multicast link and
 * address changes (RTNLGRP_*), delivered to JS as raw datagrams. Parsing lives
 * in src/net/netlink/codec.ts; policy in src/net/netlink/events.ts.
 *
 * Why here and not the `netlink` npm package: when a netlink socket's receive
 * queue overruns, the kernel flags ENOBUFS on it and that package's poll
 * handler aborts the process. This socket sets NETLINK_NO_ENOBUFS, so an
 * overrun never becomes a socket error; it still bumps the socket's drop
 * counter (sk_drops, read with SO_MEMINFO), which we check after each drain
 * and report as `onOverflow()`: events were lost, the owner re-reads the
 * state with a dump. Nothing on this path can abort the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "vigil.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* Multicast rtnetlink datagrams are one skb each, at most a page or two; 64 KiB is ample. */
#define NL_BUF 65536
#define NL_DEFAULT_DRAIN 64
#define NL_MAX_GROUPS 32

typedef struct nl_sock {
  int fd;
  unsigned drain;
  bool closed;
  bool unrefd;
  uint32_t drops;          /* sk_drops as last seen */
  napi_env env;
  uv_poll_t *poll;
  napi_ref self;
  napi_ref on_data;
  napi_ref on_overflow;
  napi_ref on_error;
  napi_async_context actx;
  unsigned char *buf;
} nl_sock;

static void nl_poll_closed(uv_handle_t *h) { free(h); }

static void nl_close(nl_sock *s) {
  if (s->closed) return;
  s->closed = true;
  if (s->poll) {
    uv_poll_stop(s->poll);
    uv_close((uv_handle_t *)s->poll, nl_poll_closed);
    s->poll = NULL;
  }
  if (s->fd >= 0) { close(s->fd); s->fd = -1; }
  napi_ref *refs[] = {&s->on_data, &s->on_overflow, &s->on_error};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
    if (*refs[i]) { napi_delete_reference(s->env, *refs[i]); *refs[i] = NULL; }
  if (s->actx) { napi_async_destroy(s->env, s->actx); s->actx = NULL; }
  if (s->self) { napi_delete_reference(s->env, s->self); s->self = NULL; }
}

static void nl_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nl_sock *s = data;
  nl_close(s);
  free(s->buf);
  free(s);
}

/* sk_drops of the socket; false when the kernel cannot tell (pre-4.12). */
static bool read_drops(int fd, uint32_t *out) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) return false;
  *out = mem[SK_MEMINFO_DROPS];
  return true;
}

static void nl_call(nl_sock *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (!fn_ref || s->closed) return;
  if (napi_get_reference_value(s->env, fn_ref, &fn) != napi_ok) return;
  if (napi_get_global(s->env, &recv) != napi_ok) return;
  napi_make_callback(s->env, s->actx, recv, fn, argc, argv, &result);
  bool pending = false;
  if (napi_is_exception_pending(s->env, &pending) == napi_ok && pending) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(s->env, &exc) == napi_ok) napi_fatal_exception(s->env, exc);
  }
}

static void nl_report_error(nl_sock *s, int err, const char *syscall) {
  napi_value e = make_errno_error(s->env, err, syscall);
  napi_value fn;
  napi_ref keep = NULL;
  if (e && s->on_error && napi_get_reference_value(s->env, s->on_error, &fn) == napi_ok)
    napi_create_reference(s->env, fn, 1, &keep);
  /* Close first so the handler sees a closed socket; the async context must outlive the call. */
  napi_async_context actx = s->actx;
  s->actx = NULL;
  nl_close(s);
  if (keep) {
    napi_value f, recv, result;
    if (napi_get_reference_value(s->env, keep, &f) == napi_ok && napi_get_global(s->env, &recv) == napi_ok) {
      napi_make_callback(s->env, actx, recv, f, 1, &e, &result);
      bool pending = false;
      if (napi_is_exception_pending(s->env, &pending) == napi_ok && pending) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(s->env, &exc) == napi_ok) napi_fatal_exception(s->env, exc);
      }
    }
    napi_delete_reference(s->env, keep);
  }
  if (actx) napi_async_destroy(s->env, actx);
}

static void nl_on_readable(uv_poll_t *h, int status, int events) {
  nl_sock *s = h->data;
  if (s->closed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  bool overflow = false;
  if (status < 0) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    /* ENOBUFS cannot be set with NETLINK_NO_ENOBUFS, but an older kernel may: it is an overflow. */
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == ENOBUFS) overflow = true;
    else { nl_report_error(s, soerr ? soerr : -status, soerr ? "SO_ERROR" : "uv_poll"); goto out; }
  } else if (events & UV_READABLE) {
    for (unsigned n = 0; n < s->drain && !s->closed; n++) {
      ssize_t r;
      int tries = 0;
      do {
        r = recv(s->fd, s->buf, NL_BUF, MSG_DONTWAIT | MSG_TRUNC);
      } while (r < 0 && errno == EINTR && ++tries < 8);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        if (errno == ENOBUFS) { overflow = true; continue; }
        nl_report_error(s, errno, "recv");
        goto out;
      }
      if ((size_t)r > NL_BUF) { overflow = true; continue; } /* truncated: its events are lost */
      napi_handle_scope inner;
      if (napi_open_handle_scope(s->env, &inner) != napi_ok) break;
      napi_value arg;
      void *copy;
      if (napi_create_buffer_copy(s->env, (size_t)r, s->buf, &copy, &arg) == napi_ok) nl_call(s, s->on_data, 1, &arg);
      napi_close_handle_scope(s->env, inner);
    }
  }
  if (!s->closed) {
    uint32_t d;
    if (read_drops(s->fd, &d) && d != s->drops) { s->drops = d; overflow = true; }
    if (overflow) nl_call(s, s->on_overflow, 0, NULL);
  }
out:
  napi_close_handle_scope(s->env, scope);
}

static nl_sock *nl_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self) {
  napi_value me;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &me, NULL) != napi_ok) { throw_napi_failure(env, "napi_get_cb_info"); return NULL; }
  if (napi_unwrap(env, me, &data) != napi_ok || !data) { throw_type(env, "not a NetlinkEvents socket"); return NULL; }
  if (self) *self = me;
  return data;
}

/* start(onDatagram, onOverflow, onError) */
static napi_value nl_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  nl_sock *s = nl_unwrap(env, info, &argc, argv, &self);
  if (!s) return NULL;
  if (s->closed) return throw_errno(env, EBADF, "uv_poll_start");
  if (s->poll) return throw_type(env, "NetlinkEvents already started");
  for (size_t i = 0; i < 3; i++) {
    napi_valuetype t;
    if (i >= argc) return throw_type(env, "start(onDatagram, onOverflow, onError) needs three functions");
    NAPI_CALL(env, napi_typeof(env, argv[i], &t));
    if (t != napi_function) return throw_type(env, "start(onDatagram, onOverflow, onError) needs three functions");
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  uv_poll_t *p = calloc(1, sizeof *p);
  if (!p) return throw_errno(env, ENOMEM, "calloc");
  int rc = uv_poll_init(loop, p, s->fd);
  if (rc < 0) { free(p); return throw_errno(env, -rc, "uv_poll_init"); }
  p->data = s;
  rc = uv_poll_start(p, UV_READABLE, nl_on_readable);
  if (rc < 0) { uv_close((uv_handle_t *)p, nl_poll_closed); return throw_errno(env, -rc, "uv_poll_start"); }
  if (s->unrefd) uv_unref((uv_handle_t *)p);
  s->poll = p;
  napi_value name;
  NAPI_CALL(env, napi_create_string_utf8(env, "vigil:NetlinkEvents", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_async_init(env, self, name, &s->actx));
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &s->on_data));
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &s->on_overflow));
  NAPI_CALL(env, napi_create_reference(env, argv[2], 1, &s->on_error));
  NAPI_CALL(env, napi_create_reference(env, self, 1, &s->self));
  return NULL;
}

static napi_value nl_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nl_sock *s = nl_unwrap(env, info, &argc, NULL, NULL);
  if (s) nl_close(s);
  return NULL;
}

/* ref(keepAlive): whether the socket keeps the event loop alive. */
static napi_value nl_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  nl_sock *s = nl_unwrap(env, info, &argc, argv, NULL);
  if (!s) return NULL;
  bool on = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return throw_type(env, "ref(keepAlive) needs a boolean");
  s->unrefd = !on;
  if (s->poll) { if (on) uv_ref((uv_handle_t *)s->poll); else uv_unref((uv_handle_t *)s->poll); }
  return NULL;
}

/* membership(group, join): join or leave a multicast group after open. */
static napi_value nl_membership(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  nl_sock *s = nl_unwrap(env, info, &argc, argv, NULL);
  if (!s) return NULL;
  int32_t g;
  bool join = false;
  if (argc < 2 || !get_int(env, argv[0], &g, "group")) return argc < 2 ? throw_type(env, "membership(group, join) needs two arguments") : NULL;
  if (napi_get_value_bool(env, argv[1], &join) != napi_ok) return throw_type(env, "join must be a boolean");
  if (g < 1 || g > 1023) return throw_type(env, "group must be 1..1023");
  if (s->closed) return throw_errno(env, EBADF, "setsockopt(NETLINK_ADD_MEMBERSHIP)");
  int gi = g;
  if (setsockopt(s->fd, SOL_NETLINK, join ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &gi, sizeof gi) < 0)
    return throw_errno(env, errno, join ? "setsockopt(NETLINK_ADD_MEMBERSHIP)" : "setsockopt(NETLINK_DROP_MEMBERSHIP)");
  return NULL;
}

static napi_value nl_closed_get(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nl_sock *s = nl_unwrap(env, info, &argc, NULL, NULL);
  if (!s) return NULL;
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, s->closed, &out));
  return out;
}

static int fail_fd(int fd) { int e = errno; close(fd); return e; }

/* openNetlinkEvents(groups: number[], rcvbufBytes: number, drain?: number) */
napi_value open_netlink_events(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_arr = false;
  if (argc < 2 || napi_is_array(env, argv[0], &is_arr) != napi_ok || !is_arr)
    return throw_type(env, "openNetlinkEvents(groups, rcvbufBytes, drain?) needs an array of groups");
  uint32_t ngroups = 0;
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &ngroups));
  if (ngroups > NL_MAX_GROUPS) return throw_type(env, "groups must hold at most 32 group numbers");
  int32_t groups[NL_MAX_GROUPS];
  for (uint32_t i = 0; i < ngroups; i++) {
    napi_value g;
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &g));
    if (!get_int(env, g, &groups[i], "group")) return NULL;
    if (groups[i] < 1 || groups[i] > 1023) return throw_type(env, "group must be 1..1023");
  }
  int32_t rcvbuf;
  if (!get_int(env, argv[1], &rcvbuf, "rcvbufBytes")) return NULL;
  if (rcvbuf < 4096) return throw_type(env, "rcvbufBytes must be at least 4096");
  int32_t drain = NL_DEFAULT_DRAIN;
  if (argc >= 3) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[2], &t));
    if (t != napi_undefined && !get_int(env, argv[2], &drain, "drain")) return NULL;
    if (drain < 1 || drain > 4096) return throw_type(env, "drain must be 1..4096");
  }

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return throw_errno(env, errno, "socket(AF_NETLINK)");
  /* FORCE passes net.core.rmem_max (needs CAP_NET_ADMIN); without it take what the cap allows. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
    return throw_errno(env, fail_fd(fd), "setsockopt(SO_RCVBUF)");
  int one = 1;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) < 0)
    return throw_errno(env, fail_fd(fd), "setsockopt(NETLINK_NO_ENOBUFS)");
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return throw_errno(env, fail_fd(fd), "bind(AF_NETLINK)");
  for (uint32_t i = 0; i < ngroups; i++) {
    int g = groups[i];
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
      return throw_errno(env, fail_fd(fd), "setsockopt(NETLINK_ADD_MEMBERSHIP)");
  }
  socklen_t salen = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) return throw_errno(env, fail_fd(fd), "getsockname");
  int granted = 0;
  socklen_t glen = sizeof granted;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen) < 0) granted = 0;

  nl_sock *s = calloc(1, sizeof *s);
  unsigned char *buf = malloc(NL_BUF);
  if (!s || !buf) { free(s); free(buf); close(fd); return throw_errno(env, ENOMEM, "calloc"); }
  s->fd = fd;
  s->buf = buf;
  s->drain = (unsigned)drain;
  s->env = env;
  if (!read_drops(fd, &s->drops)) s->drops = 0;

  napi_value obj, jport, jbuf, fstart, fclose, fref, fmem;
  if (napi_create_object(env, &obj) != napi_ok || napi_wrap(env, obj, s, nl_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(buf);
    free(s);
    throw_napi_failure(env, "napi_wrap");
    return NULL;
  }
  NAPI_CALL(env, napi_create_uint32(env, sa.nl_pid, &jport));
  NAPI_CALL(env, napi_create_int32(env, granted, &jbuf));
  NAPI_CALL(env, napi_create_function(env, "start", NAPI_AUTO_LENGTH, nl_start, NULL, &fstart));
  NAPI_CALL(env, napi_create_function(env, "close", NAPI_AUTO_LENGTH, nl_close_js, NULL, &fclose));
  NAPI_CALL(env, napi_create_function(env, "ref", NAPI_AUTO_LENGTH, nl_ref, NULL, &fref));
  NAPI_CALL(env, napi_create_function(env, "membership", NAPI_AUTO_LENGTH, nl_membership, NULL, &fmem));
  napi_property_descriptor props[] = {
      {"port", NULL, NULL, NULL, NULL, jport, napi_enumerable, NULL},
      {"rcvbufBytes", NULL, NULL, NULL, NULL, jbuf, napi_enumerable, NULL},
      {"start", NULL, NULL, NULL, NULL, fstart, napi_default, NULL},
      {"close", NULL, NULL, NULL, NULL, fclose, napi_default, NULL},
      {"ref", NULL, NULL, NULL, NULL, fref, napi_default, NULL},
      {"membership", NULL, NULL, NULL, NULL, fmem, napi_default, NULL},
      {"closed", NULL, NULL, nl_closed_get, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, obj, sizeof props / sizeof props[0], props));
  return obj;
}
