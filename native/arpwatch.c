/*
 * Layer: native. The steady-state probe loop of the HA IP role, run on the
 * ARP socket without entering JavaScript.
 *
 * Why it is here and not in TypeScript: at rest a slave sends one probe per
 * check interval and hears the same answer each time. Each of those rounds
 * woke JavaScript (about 1 ms of CPU per wake-up for Node here, against
 * keepalived's 50-220 us), which made an idle pair cost 3.5x keepalived at
 * equal wire traffic. Here a round is one timer callback that sends a frame
 * built by JavaScript, and one readable callback that recognises the answer:
 * no V8 entry. JavaScript decides everything else, so this loop is as small
 * as it can be and has no policy of its own:
 *
 *   watch(frame, ip, mac|null, everyMs, timeoutMs, rounds, onEnd)
 *
 * Each round: wait `everyMs`, send `frame`, wait up to `timeoutMs`.
 *  - mac given ("expect an answer", a slave): the round passes when an ARP
 *    reply from `ip` with sender MAC `mac`, addressed to our MAC, is read; that
 *    frame is taken here and never reaches JavaScript. Its round trip (read
 *    time minus send time, CLOCK_MONOTONIC) is kept.
 *  - mac null ("expect silence", a master's conflict probe): the round passes
 *    once its frame is out (no deadline, so one wake-up per round). Nothing
 *    is taken: any frame about `ip`, whenever it comes, goes to JavaScript as
 *    before, which ends the watch if it is a competitor. With neighbour
 *    requests (extraFrames, anyIps) the round sends them too and passes at
 *    the first neighbour's reply, taken here; none by the timeout ends the
 *    watch (kind 1): the master's own link may reach nobody.
 * onEnd(kind, rounds, rttsMs, errno) is called once, from a timer callback
 * (never from inside JavaScript's own call into us), when:
 *  - kind 0: all `rounds` passed (JavaScript takes over for one check, so
 *    its books and the address upkeep stay current);
 *  - kind 1: a round expecting an answer (the holder's, or with neighbour
 *    requests any neighbour's) had none by its timeout, after the
 *    frames already queued were read (the same rule as the TypeScript
 *    prober: silence only after a drain, so a stall of this process can
 *    delay the verdict but never invent it);
 *  - kind 2: the send failed (errno); JavaScript retries with its own probe.
 * unwatch() stops it without a call. Every failure of a call is checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_ether.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vigil.h"
#include "arp.h"

/* Rounds per watch at most: a bound on the samples kept (10 s at 10 ms). */
#define WATCH_MAX_ROUNDS 1000
/* Neighbour requests sent with each round of a master's watch, at most. */
#define WATCH_MAX_EXTRA 16
#define ARP_FRAME_LEN 60
#define EINTR_RETRIES 8

enum watch_phase { W_IDLE, W_WAIT, W_OUT, W_ENDING };

typedef struct arp_watch {
  arp_sock *s;
  uv_timer_t *timer;        /* created at the first watch(); freed in its close callback */
  unsigned char frame[ETH_FRAME_LEN];
  size_t frame_len;
  unsigned char ip[4];      /* the watched IP, network order as on the wire */
  unsigned char mac[6];     /* the expected answerer (expect_answer) */
  bool expect_answer;
  /* A master's watch may carry neighbour requests: the round then passes at
   * the first reply from any of `any_ip` (the link reaches someone). */
  unsigned char extra[WATCH_MAX_EXTRA][ARP_FRAME_LEN];
  size_t extra_len[WATCH_MAX_EXTRA];
  unsigned n_extra;
  unsigned char any_ip[WATCH_MAX_EXTRA][4];
  unsigned n_any;
  double every_ms, timeout_ms;
  uint32_t rounds;          /* rounds asked for */
  uint32_t done;            /* rounds passed in this watch */
  enum watch_phase phase;
  int end_errno;
  uint64_t sent_at;         /* ns, of the probe out */
  uint32_t gen;             /* bumped at every start and stop: a callback of an old watch does nothing */
  double rtts[WATCH_MAX_ROUNDS];
  uint32_t answered;        /* rtts[] filled in this watch */
  napi_ref on_end;
  /* For status, since the socket opened. */
  uint64_t total_rounds, total_taken, last_round_ns;
  double last_rtt_ms;
} arp_watch;

static void watch_on_timer(uv_timer_t *t);

/* Drop the callback and stop the timer; the watch object stays for reuse. */
static void watch_stop(arp_watch *w) {
  w->gen++;
  w->phase = W_IDLE;
  if (w->timer) uv_timer_stop(w->timer);
  if (w->on_end) {
    napi_delete_reference(w->s->env, w->on_end);
    w->on_end = NULL;
  }
}

static int watch_arm(arp_watch *w, double ms) { return arp_timer_start(w->timer, watch_on_timer, ms); }

/* The end of a watch, for the timer callback to report (kind 2: send failed). */
static void watch_finish(arp_watch *w, int kind_errno) {
  w->end_errno = kind_errno;
  w->phase = W_ENDING;
}

static void watch_report(arp_watch *w, int kind) {
  arp_sock *s = w->s;
  napi_ref cb = w->on_end;
  w->on_end = NULL;
  uint32_t rounds = w->done, n = w->answered;
  int err = w->end_errno;
  w->gen++;
  w->phase = W_IDLE;
  if (!cb) return;
  napi_env env = s->env;
  napi_value argv[4], arr, fn;
  void *data = NULL;
  if (napi_create_int32(env, kind, &argv[0]) == napi_ok && napi_create_uint32(env, rounds, &argv[1]) == napi_ok &&
      napi_create_arraybuffer(env, n * sizeof(double), &data, &arr) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, n, arr, 0, &argv[2]) == napi_ok &&
      napi_create_int32(env, err, &argv[3]) == napi_ok && napi_get_reference_value(env, cb, &fn) == napi_ok) {
    if (n > 0 && data) memcpy(data, w->rtts, n * sizeof(double));
    /* arp_call takes a reference; hold the function in one for the call. */
    arp_call(s, cb, 4, argv);
  }
  napi_delete_reference(env, cb);
}

/* One round passed: the next one, or the end after the last. */
static void watch_round_passed(arp_watch *w, uint64_t at) {
  w->done++;
  w->total_rounds++;
  w->last_round_ns = at;
  if (w->done >= w->rounds) {
    watch_finish(w, 0);
    if (watch_arm(w, 0) < 0) watch_report(w, 0);
    return;
  }
  w->phase = W_WAIT;
  int rc = watch_arm(w, w->every_ms);
  if (rc < 0) {
    watch_finish(w, -rc);
    watch_report(w, 2);
  }
}

bool arp_watch_take(arp_sock *s, const unsigned char *f, size_t len, uint64_t at) {
  arp_watch *w = s->watch;
  if (!w || w->phase == W_IDLE) return false;
  /* Ethernet (14) + ARP for IPv4 over Ethernet (28): a reply (op 2) addressed to our MAC. */
  if (len < 42 || f[12] != 0x08 || f[13] != 0x06) return false;
  if (f[14] != 0 || f[15] != 1 || f[16] != 0x08 || f[17] != 0 || f[18] != 6 || f[19] != 4) return false;
  if (f[20] != 0 || f[21] != 2 || memcmp(f + 32, s->mac, 6) != 0) return false;
  const unsigned char *sha = f + 22, *spa = f + 28;
  if (w->expect_answer) {
    /* The holder's answer to the probe out: the round passes, with its round trip. */
    if (w->phase != W_OUT || memcmp(sha, w->mac, 6) != 0 || memcmp(spa, w->ip, 4) != 0) return false;
    double rtt = at > w->sent_at ? (double)(at - w->sent_at) / 1e6 : 0;
    if (w->answered < WATCH_MAX_ROUNDS) w->rtts[w->answered++] = rtt;
    w->last_rtt_ms = rtt;
    w->total_taken++;
    watch_round_passed(w, at);
    return true;
  }
  for (unsigned i = 0; i < w->n_any; i++) {
    if (memcmp(spa, w->any_ip[i], 4) != 0) continue;
    /* A neighbour answered: the link reaches someone. The first passes the
     * round; the others (and late ones) are nothing JavaScript needs. */
    w->total_taken++;
    if (w->phase == W_OUT) watch_round_passed(w, at);
    return true;
  }
  return false;
}

static bool watch_send_one(arp_watch *w, const unsigned char *frame, size_t len, uint64_t *at) {
  ssize_t r;
  int tries = 0;
  do {
    *at = monotonic_ns();
    r = send(w->s->fd, frame, len, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR && ++tries < EINTR_RETRIES);
  return r >= 0;
}

static void watch_send(arp_watch *w) {
  arp_sock *s = w->s;
  uint64_t at, ignored;
  bool ok = watch_send_one(w, w->frame, w->frame_len, &at);
  for (unsigned i = 0; ok && i < w->n_extra; i++) ok = watch_send_one(w, w->extra[i], w->extra_len[i], &ignored);
  if (!ok) {
    watch_finish(w, errno);
    watch_report(w, 2);
    return;
  }
  w->sent_at = at;
  w->phase = W_OUT;
  /* An answer that came back within the send ends the round now, without a
   * wake-up for it (a peer on the same host, a fast LAN). The read may call
   * JavaScript for other frames, which may stop or restart the watch. */
  uint32_t gen = w->gen;
  arp_read_frames(s, false);
  if (s->closed || s->watch != w || w->gen != gen || w->phase != W_OUT) return;
  if (!w->expect_answer && w->n_any == 0) {
    /* Silence expected: nothing to wait for. A competitor's answer, whenever
     * it comes, goes to JavaScript and ends the watch there; a deadline would
     * only cost a second wake-up per round. */
    watch_round_passed(w, at);
    return;
  }
  int rc = watch_arm(w, w->timeout_ms);
  if (rc < 0) {
    watch_finish(w, -rc);
    watch_report(w, 2);
  }
}

static void watch_on_timer(uv_timer_t *t) {
  arp_watch *w = t->data;
  if (!w) return;
  arp_sock *s = w->s;
  if (s->closed) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  switch (w->phase) {
    case W_WAIT:
      watch_send(w);
      break;
    case W_OUT: {
      /* The timeout: read what is queued first (the answer may be there,
       * late only because this process was), then decide. */
      uint32_t gen = w->gen;
      arp_read_frames(s, false);
      if (s->closed || w->gen != gen || w->phase != W_OUT) break;
      /* Only a watch that expects an answer (the holder's, or any neighbour's) arms a deadline. */
      watch_finish(w, 0);
      watch_report(w, 1);
      break;
    }
    case W_ENDING:
      watch_report(w, w->end_errno == 0 ? 0 : 2);
      break;
    case W_IDLE:
      break;
  }
  napi_close_handle_scope(s->env, scope);
}

void arp_watch_close(arp_sock *s) {
  arp_watch *w = s->watch;
  if (!w) return;
  watch_stop(w);
  s->watch = NULL;
  if (w->timer) {
    w->timer->data = NULL;
    uv_close((uv_handle_t *)w->timer, arp_handle_free);
  }
  free(w);
}

static bool get_double(napi_env env, napi_value v, double *out, double min, double max, const char *what) {
  if (napi_get_value_double(env, v, out) != napi_ok || !(*out >= min) || !(*out <= max)) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number in %g..%g", what, min, max);
    throw_type(env, msg);
    return false;
  }
  return true;
}

/*
 * watch(frame, ip(4 bytes), mac(6 bytes)|null, everyMs, timeoutMs, rounds, onEnd
 *       [, extraFrames: Buffer[], anyIps: Buffer(4 × n)]); replaces a running watch.
 * extraFrames/anyIps only with mac null: requests sent with each round, which
 * then passes at the first reply from any of anyIps.
 */
napi_value arp_watch_js(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  arp_sock *s = arp_unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 7) return throw_type(env, "watch(frame, ip, mac, everyMs, timeoutMs, rounds, onEnd) needs 7 arguments");
  if (s->closed || !s->poll) return throw_errno(env, EBADF, "watch");
  bool is_buf = false;
  void *frame, *ip, *mac = NULL;
  size_t frame_len, ip_len, mac_len = 0;
  NAPI_CALL(env, napi_is_buffer(env, argv[0], &is_buf));
  if (!is_buf) return throw_type(env, "watch: frame must be a Buffer");
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &frame, &frame_len));
  if (frame_len < ETH_HLEN || frame_len > ETH_FRAME_LEN) return throw_type(env, "watch: frame must be a whole Ethernet frame (14..1514 bytes)");
  NAPI_CALL(env, napi_is_buffer(env, argv[1], &is_buf));
  if (!is_buf) return throw_type(env, "watch: ip must be a 4-byte Buffer");
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &ip, &ip_len));
  if (ip_len != 4) return throw_type(env, "watch: ip must be a 4-byte Buffer");
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t != napi_null) {
    NAPI_CALL(env, napi_is_buffer(env, argv[2], &is_buf));
    if (!is_buf) return throw_type(env, "watch: mac must be a 6-byte Buffer or null");
    NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &mac, &mac_len));
    if (mac_len != 6) return throw_type(env, "watch: mac must be a 6-byte Buffer or null");
  }
  double every, timeout, rounds;
  if (!get_double(env, argv[3], &every, 0, 3600000, "watch: everyMs") ||
      !get_double(env, argv[4], &timeout, 0, 3600000, "watch: timeoutMs") ||
      !get_double(env, argv[5], &rounds, 1, WATCH_MAX_ROUNDS, "watch: rounds"))
    return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[6], &t));
  if (t != napi_function) return throw_type(env, "watch: onEnd must be a function");
  unsigned char extra[WATCH_MAX_EXTRA][ARP_FRAME_LEN], any[WATCH_MAX_EXTRA][4];
  size_t extra_len[WATCH_MAX_EXTRA];
  uint32_t n_extra = 0, n_any = 0;
  napi_valuetype t7 = napi_undefined;
  if (argc >= 9) NAPI_CALL(env, napi_typeof(env, argv[7], &t7));
  if (t7 != napi_undefined) {
    bool is_arr = false;
    NAPI_CALL(env, napi_is_array(env, argv[7], &is_arr));
    if (!is_arr) return throw_type(env, "watch: extraFrames must be an array of Buffers");
    NAPI_CALL(env, napi_get_array_length(env, argv[7], &n_extra));
    if (n_extra > WATCH_MAX_EXTRA) return throw_type(env, "watch: at most 16 extra frames");
    for (uint32_t i = 0; i < n_extra; i++) {
      napi_value e;
      void *d;
      size_t l;
      NAPI_CALL(env, napi_get_element(env, argv[7], i, &e));
      NAPI_CALL(env, napi_is_buffer(env, e, &is_buf));
      if (!is_buf) return throw_type(env, "watch: extraFrames must be an array of Buffers");
      NAPI_CALL(env, napi_get_buffer_info(env, e, &d, &l));
      if (l < ETH_HLEN || l > ARP_FRAME_LEN) return throw_type(env, "watch: an extra frame must be 14..60 bytes");
      memcpy(extra[i], d, l);
      extra_len[i] = l;
    }
    void *d;
    size_t l;
    NAPI_CALL(env, napi_is_buffer(env, argv[8], &is_buf));
    if (!is_buf) return throw_type(env, "watch: anyIps must be a Buffer of 4-byte addresses");
    NAPI_CALL(env, napi_get_buffer_info(env, argv[8], &d, &l));
    if (l % 4 != 0 || l / 4 > WATCH_MAX_EXTRA) return throw_type(env, "watch: anyIps must be a Buffer of at most 16 4-byte addresses");
    n_any = (uint32_t)(l / 4);
    memcpy(any, d, l);
    if (mac && (n_extra > 0 || n_any > 0)) return throw_type(env, "watch: extraFrames and anyIps only when no answer is expected from ip (mac null)");
  }

  arp_watch *w = s->watch;
  if (!w) {
    w = calloc(1, sizeof *w);
    if (!w) return throw_errno(env, ENOMEM, "calloc");
    uv_loop_t *loop;
    uv_timer_t *tm = calloc(1, sizeof *tm);
    int rc;
    if (!tm || napi_get_uv_event_loop(env, &loop) != napi_ok || (rc = uv_timer_init(loop, tm)) < 0) {
      free(tm);
      free(w);
      return throw_errno(env, ENOMEM, "uv_timer_init");
    }
    tm->data = w;
    w->timer = tm;
    w->s = s;
    s->watch = w;
  }
  watch_stop(w);
  memcpy(w->frame, frame, frame_len);
  w->frame_len = frame_len;
  memcpy(w->ip, ip, 4);
  w->expect_answer = mac != NULL;
  if (mac) memcpy(w->mac, mac, 6);
  w->n_extra = n_extra;
  for (uint32_t i = 0; i < n_extra; i++) {
    memcpy(w->extra[i], extra[i], extra_len[i]);
    w->extra_len[i] = extra_len[i];
  }
  w->n_any = n_any;
  if (n_any) memcpy(w->any_ip, any, n_any * 4);
  w->every_ms = every;
  w->timeout_ms = timeout;
  w->rounds = (uint32_t)rounds;
  w->done = 0;
  w->answered = 0;
  w->end_errno = 0;
  NAPI_CALL(env, napi_create_reference(env, argv[6], 1, &w->on_end));
  w->phase = W_WAIT;
  int rc = watch_arm(w, every);
  if (rc < 0) {
    watch_stop(w);
    return throw_errno(env, -rc, "uv_timer_start");
  }
  return NULL;
}

/* unwatch(): stop a running watch without calling onEnd; true if one ran. */
napi_value arp_unwatch_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  bool was = s->watch && s->watch->phase != W_IDLE;
  if (s->watch) watch_stop(s->watch);
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, was, &out));
  return out;
}

/*
 * watchState(): {active, rounds, answered, lastRoundNs, lastRttMs,
 * totalRounds, taken} — what status shows of a loop JavaScript does not see
 * round by round; undefined before the first watch().
 */
napi_value arp_watch_state_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  arp_sock *s = arp_unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  napi_value out, v;
  if (!s->watch) {
    NAPI_CALL(env, napi_get_undefined(env, &out));
    return out;
  }
  arp_watch *w = s->watch;
  NAPI_CALL(env, napi_create_object(env, &out));
  NAPI_CALL(env, napi_get_boolean(env, w->phase != W_IDLE, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "active", v));
  NAPI_CALL(env, napi_create_uint32(env, w->done, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "rounds", v));
  NAPI_CALL(env, napi_create_uint32(env, w->answered, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "answered", v));
  NAPI_CALL(env, napi_create_bigint_uint64(env, w->last_round_ns, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "lastRoundNs", v));
  NAPI_CALL(env, napi_create_double(env, w->last_rtt_ms, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "lastRttMs", v));
  NAPI_CALL(env, napi_create_double(env, (double)w->total_rounds, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "totalRounds", v));
  NAPI_CALL(env, napi_create_double(env, (double)w->total_taken, &v));
  NAPI_CALL(env, napi_set_named_property(env, out, "taken", v));
  return out;
}
