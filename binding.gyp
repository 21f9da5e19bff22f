{
  "targets": [
    {
      "target_name": "vigil",
      "sources": ["native/vigil.c", "native/nlevents.c", "native/arpwatch.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
