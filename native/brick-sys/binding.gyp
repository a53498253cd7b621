{
  "targets": [{
    "target_name": "brick_sys",
    "sources": ["brick_sys.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  }]
}
