{
  "targets": [{
    "target_name": "fuse_ll",
    "sources": ["fuse_ll.c"],
    "include_dirs": ["<!(node -e \"require('fuse-shared-library/include')\")"],
    "libraries": [
      "<!(node -e \"require('fuse-shared-library/lib')\")",
      "-Wl,-rpath,'$$ORIGIN'"
    ],
    "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
  }]
}
