/*
 * Layer: native, shared helpers between vigil.c (ARP socket, namespaces,
 * notify, watchdog, flock) and nlevents.c (the netlink event socket).
 */
#ifndef VIGIL_NATIVE_H
#define VIGIL_NATIVE_H
#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>

/* Check an N-API call; on failure throw (unless one is pending) and return NULL. */
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      throw_napi_failure((env), #call);                                        \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

/* The same for functions returning void (callbacks from libuv). */
#define NAPI_CALL_VOID(env, call)                                              \
  do {                                                                         \
    napi_status status_ = (call);                                              \
    if (status_ != napi_ok) {                                                  \
      throw_napi_failure((env), #call);                                        \
      return;                                                                  \
    }                                                                          \
  } while (0)
void throw_napi_failure(napi_env env, const char *what);
/* Build an Error carrying {errno, code, syscall}; NULL if N-API itself failed. */
napi_value make_errno_error(napi_env env, int err, const char *syscall);
napi_value throw_errno(napi_env env, int err, const char *syscall);
napi_value throw_type(napi_env env, const char *msg);
bool get_int(napi_env env, napi_value v, int32_t *out, const char *what);
uint64_t monotonic_ns(void);

/* nlevents.c: openNetlinkEvents(groups, rcvbufBytes, drain). */
napi_value open_netlink_events(napi_env env, napi_callback_info info);

#endif
