{
  "targets": [{
    "target_name": "fuse_ll",
    "sources": ["fuse_ll.c"],
    "include_dirs": ["/usr/include/fuse3"],
    "libraries": ["-lfuse3"],
    "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
  }]
}
