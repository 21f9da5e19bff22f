/*
 * Layer: native, the ARP socket's state, shared between vigil.c (the socket:
 * open, send, receive, filter, timer) and arpwatch.c (the steady-state probe
 * loop that runs on it without JavaScript).
 */
#ifndef VIGIL_ARP_H
#define VIGIL_ARP_H
#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>
#include <uv.h>

struct arp_watch;

#define ARP_MAX_FRAME 2048
#define ARP_DEFAULT_DRAIN 32
#define EINTR_RETRIES 8

typedef struct arp_sock {
  int fd;
  int ifindex;
  unsigned char mac[6];
  unsigned drain;
  bool closed;
  napi_env env;
  uv_poll_t *poll;          /* owned by libuv once started; freed in its close callback */
  napi_ref self;            /* strong while polling, so GC cannot take a live socket */
  napi_ref on_frame;
  napi_ref on_error;
  napi_ref on_timer;        /* start()'s optional third callback, for armTimer() */
  uv_timer_t *timer;        /* created at the first armTimer(); freed in its close callback */
  napi_async_context actx; /* so callbacks run through MakeCallback (microtasks drain) */
  struct arp_watch *watch;  /* arpwatch.c: the native probe loop, NULL until the first watch() */
} arp_sock;

/* vigil.c */
arp_sock *arp_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv);
void arp_call(arp_sock *s, napi_ref fn_ref, size_t argc, napi_value *argv);
unsigned arp_read_frames(arp_sock *s, bool sync);
/* Start (or restart) `t` to fire after `ms`, never earlier (see arp_arm_timer). */
int arp_timer_start(uv_timer_t *t, uv_timer_cb cb, double ms);
void arp_handle_free(uv_handle_t *h);

/* arpwatch.c */
/* A frame read while a watch runs: true if the watch took it (JavaScript never sees it). */
bool arp_watch_take(arp_sock *s, const unsigned char *frame, size_t len, uint64_t at);
/* The socket closes: stop the loop and drop its references. */
void arp_watch_close(arp_sock *s);
napi_value arp_watch_js(napi_env env, napi_callback_info info);
napi_value arp_unwatch_js(napi_env env, napi_callback_info info);
napi_value arp_watch_state_js(napi_env env, napi_callback_info info);
#endif
