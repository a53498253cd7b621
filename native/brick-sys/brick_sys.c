// The system calls the brick (brick/xlators/storage/posix.ts) needs and Node lacks: mknod,
// openat2 (RESOLVE_BENEATH & co.), the *at() calls on one name relative to a directory fd,
// and a caller's filesystem credentials for this thread. brick/xlators/storage/sys.ts is the only user and holds the types.
//
// Everything is synchronous, on the calling (main) thread. Failures throw an Error shaped
// like Node's own system errors: .code ('EEXIST'), .errno (negative, -17), .syscall and
// .path/.dest, so lib/errors.ts FsError.from() converts them. Bad argument types throw a
// TypeError/RangeError with an ERR_* code instead.
//
// Extended attributes: getxattrat/setxattrat/listxattrat/removexattrat on one name relative to
// a directory fd, never following a final symlink (the kernel's *xattrat calls of Linux 6.13,
// else l*xattr on "/proc/self/fd/<dirfd>/<name>").
//
// Confinement: the *at() calls take a single path component ("name": no '/', not "..") and
// never follow a final symlink (AT_SYMLINK_NOFOLLOW is always added where the call has it;
// linkat refuses AT_SYMLINK_FOLLOW). Resolve the parent directory with openat2 and
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (or RESOLVE_IN_ROOT) first, then act on the name.
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uv.h>

#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_renameat2
#error "SYS_renameat2 is missing from the kernel headers"
#endif
#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_BENEATH 0x08
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef RESOLVE_CACHED
#define RESOLVE_CACHED 0x20
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif
#ifndef O_TMPFILE
#define O_TMPFILE 0
#endif

/** The kernel's struct open_how (linux/openat2.h), ours so the build needs no new headers. */
struct brick_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};

/** The largest integer a double holds exactly (Number.MAX_SAFE_INTEGER). */
#define MAX_SAFE 9007199254740991.0

static int has_openat2;

// ---- errors ------------------------------------------------------------------------------

/** The errno's name ("EEXIST"): glibc's, else libuv's (which Node uses), else "E<n>". */
static void errno_name(int err, char *buf, size_t len) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(err);
  if (n) { snprintf(buf, len, "%s", n); return; }
#endif
  uv_err_name_r(-err, buf, len);
  if (strncmp(buf, "Unknown", 7) == 0) snprintf(buf, len, "E%d", err);
}

/** Throws a Node-style system error: "EEXIST: file already exists, mknodat 'name'". */
static void throw_sys(napi_env env, int err, const char *syscall, const char *path, const char *dest, const char *why) {
  char code[64], desc[256], msg[2 * PATH_MAX + 512];
  errno_name(err, code, sizeof code);
  uv_strerror_r(-err, desc, sizeof desc);
  if (strncmp(desc, "Unknown system error", 20) == 0) snprintf(desc, sizeof desc, "%s", strerror(err));
  int n = snprintf(msg, sizeof msg, "%s: %s, %s", code, why ? why : desc, syscall);
  if (path && n < (int)sizeof msg) n += snprintf(msg + n, sizeof msg - n, " '%s'", path);
  if (dest && n < (int)sizeof msg) snprintf(msg + n, sizeof msg - n, " -> '%s'", dest);

  napi_value jcode, jmsg, e, v;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok) return;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok) return;
  if (napi_create_error(env, jcode, jmsg, &e) != napi_ok) return;
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, e, "path", v);
  }
  if (dest) {
    napi_create_string_utf8(env, dest, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, e, "dest", v);
  }
  napi_throw(env, e);
}

static void throw_type(napi_env env, const char *fn, const char *what, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s must be %s", fn, what, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

// ---- arguments ---------------------------------------------------------------------------

#define ARGS(N)                                                                   \
  size_t argc = N;                                                                \
  napi_value argv[N];                                                             \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;

/** An integer argument in [lo, hi]; undefined reads as dflt when optional. 0, or -1 thrown. */
static int arg_num(napi_env env, napi_value v, const char *fn, const char *what, double lo, double hi,
                   int optional, double dflt, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined && optional) { *out = dflt; return 0; }
  if (t != napi_number) { throw_type(env, fn, what, "a number"); return -1; }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (!isfinite(d) || floor(d) != d || d < lo || d > hi) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s must be an integer in [%.0f, %.0f], got %g", fn, what, lo, hi, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  *out = d;
  return 0;
}

static int arg_fd(napi_env env, napi_value v, const char *fn, const char *what, int *out) {
  double d;
  if (arg_num(env, v, fn, what, INT32_MIN, INT32_MAX, 0, 0, &d)) return -1;
  *out = (int)d;
  return 0;
}

static int arg_flags(napi_env env, napi_value v, const char *fn, int *out) {
  double d;
  if (arg_num(env, v, fn, "flags", 0, INT32_MAX, 1, 0, &d)) return -1;
  *out = (int)d;
  return 0;
}

/** A uid or gid: -1 (or 0xffffffff) means "leave as is" where the call allows it. */
static int arg_id(napi_env env, napi_value v, const char *fn, const char *what, uint32_t *out) {
  double d;
  if (arg_num(env, v, fn, what, -1, 4294967295.0, 0, 0, &d)) return -1;
  *out = d < 0 ? (uint32_t)-1 : (uint32_t)d;
  return 0;
}

/**
 * A path (string or Buffer) into buf (PATH_MAX bytes, NUL-terminated). Too long throws
 * ENAMETOOLONG, an embedded NUL a TypeError (as Node's fs does).
 */
static int arg_path(napi_env env, napi_value v, const char *fn, const char *syscall, const char *what, char *buf) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  size_t len = 0;
  if (t == napi_string) {
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
    if (len >= PATH_MAX) { throw_sys(env, ENAMETOOLONG, syscall, NULL, NULL, NULL); return -1; }
    if (napi_get_value_string_utf8(env, v, buf, PATH_MAX, &len) != napi_ok) return -1;
  } else {
    bool is_buf = false;
    napi_is_buffer(env, v, &is_buf);
    if (!is_buf) { throw_type(env, fn, what, "a string or a Buffer"); return -1; }
    void *data;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return -1;
    if (len >= PATH_MAX) { throw_sys(env, ENAMETOOLONG, syscall, NULL, NULL, NULL); return -1; }
    memcpy(buf, data, len);
    buf[len] = 0;
  }
  if (memchr(buf, 0, len)) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s must not contain null bytes", fn, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return -1;
  }
  return 0;
}

/** A single path component: no '/', not "..". "" and "." are left to the kernel (and AT_EMPTY_PATH). */
static int arg_name(napi_env env, napi_value v, const char *fn, const char *what, char *buf) {
  if (arg_path(env, v, fn, fn, what, buf)) return -1;
  if (strchr(buf, '/') || strcmp(buf, "..") == 0) {
    throw_sys(env, EINVAL, fn, buf, NULL, "a name must be one path component (no '/', not '..')");
    return -1;
  }
  return 0;
}

static napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// ---- device numbers ----------------------------------------------------------------------

static int arg_dev(napi_env env, napi_value v, const char *fn, const char *what, dev_t *out) {
  double d;
  if (arg_num(env, v, fn, what, 0, MAX_SAFE, 0, 0, &d)) return -1;
  *out = (dev_t)(uint64_t)d;
  return 0;
}

static napi_value js_makedev(napi_env env, napi_callback_info info) {
  ARGS(2);
  double ma, mi;
  if (arg_num(env, argv[0], "makedev", "major", 0, 4294967295.0, 0, 0, &ma)) return NULL;
  if (arg_num(env, argv[1], "makedev", "minor", 0, 4294967295.0, 0, 0, &mi)) return NULL;
  uint64_t dev = (uint64_t)makedev((unsigned int)ma, (unsigned int)mi);
  if ((double)dev > MAX_SAFE) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "makedev: the device number does not fit a Number exactly");
    return NULL;
  }
  return number(env, (double)dev);
}

static napi_value js_major(napi_env env, napi_callback_info info) {
  ARGS(1);
  dev_t d;
  if (arg_dev(env, argv[0], "major", "rdev", &d)) return NULL;
  return number(env, major(d));
}

static napi_value js_minor(napi_env env, napi_callback_info info) {
  ARGS(1);
  dev_t d;
  if (arg_dev(env, argv[0], "minor", "rdev", &d)) return NULL;
  return number(env, minor(d));
}

// ---- mknod -------------------------------------------------------------------------------

static napi_value js_mknodat(napi_env env, napi_callback_info info) {
  ARGS(4);
  int dirfd;
  char name[PATH_MAX];
  double mode;
  dev_t rdev;
  if (arg_fd(env, argv[0], "mknodat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "mknodat", "name", name)) return NULL;
  if (arg_num(env, argv[2], "mknodat", "mode", 0, 0xffff, 0, 0, &mode)) return NULL;
  if (arg_dev(env, argv[3], "mknodat", "rdev", &rdev)) return NULL;
  if (mknodat(dirfd, name, (mode_t)mode, rdev) != 0) throw_sys(env, errno, "mknodat", name, NULL, NULL);
  return NULL;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(3);
  char path[PATH_MAX];
  double mode;
  dev_t rdev;
  if (arg_path(env, argv[0], "mknod", "mknod", "path", path)) return NULL;
  if (arg_num(env, argv[1], "mknod", "mode", 0, 0xffff, 0, 0, &mode)) return NULL;
  if (arg_dev(env, argv[2], "mknod", "rdev", &rdev)) return NULL;
  if (mknodat(AT_FDCWD, path, (mode_t)mode, rdev) != 0) throw_sys(env, errno, "mknod", path, NULL, NULL);
  return NULL;
}

// ---- openat2 -----------------------------------------------------------------------------

static long sys_openat2(int dirfd, const char *path, struct brick_open_how *how) {
  long r;
  do r = syscall(SYS_openat2, dirfd, path, how, sizeof *how);
  while (r < 0 && errno == EINTR);
  return r;
}

/** openat2(dirfd, path, flags, mode, resolve): a new fd, always O_CLOEXEC. */
static napi_value js_openat2(napi_env env, napi_callback_info info) {
  ARGS(5);
  int dirfd;
  char path[PATH_MAX];
  double flags, mode, resolve;
  if (arg_fd(env, argv[0], "openat2", "dirfd", &dirfd)) return NULL;
  if (arg_path(env, argv[1], "openat2", "openat2", "path", path)) return NULL;
  if (arg_num(env, argv[2], "openat2", "flags", 0, 4294967295.0, 0, 0, &flags)) return NULL;
  if (arg_num(env, argv[3], "openat2", "mode", 0, 07777, 1, 0, &mode)) return NULL;
  if (arg_num(env, argv[4], "openat2", "resolve", 0, MAX_SAFE, 1, 0, &resolve)) return NULL;
  struct brick_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags | O_CLOEXEC;
  /* The kernel refuses a mode without O_CREAT or O_TMPFILE (EINVAL): drop it there. */
  how.mode = (how.flags & (O_CREAT | O_TMPFILE)) ? (uint64_t)mode : 0;
  how.resolve = (uint64_t)resolve;
  long fd = sys_openat2(dirfd, path, &how);
  if (fd < 0) { throw_sys(env, errno, "openat2", path, NULL, NULL); return NULL; }
  return number(env, (double)fd);
}

// ---- *at() on one name -------------------------------------------------------------------

static napi_value js_fchownat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int dirfd, flags;
  char name[PATH_MAX];
  uint32_t uid, gid;
  if (arg_fd(env, argv[0], "fchownat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "fchownat", "name", name)) return NULL;
  if (arg_id(env, argv[2], "fchownat", "uid", &uid)) return NULL;
  if (arg_id(env, argv[3], "fchownat", "gid", &gid)) return NULL;
  if (arg_flags(env, argv[4], "fchownat", &flags)) return NULL;
  if (fchownat(dirfd, name, (uid_t)uid, (gid_t)gid, flags | AT_SYMLINK_NOFOLLOW) != 0)
    throw_sys(env, errno, "fchownat", name, NULL, NULL);
  return NULL;
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/**
 * chmod of name in dirfd itself, never through a final symlink: fchmodat2 (Linux 6.6) with
 * AT_SYMLINK_NOFOLLOW, else glibc's fchmodat(AT_SYMLINK_NOFOLLOW) (an O_PATH fd of the name
 * and chmod of its /proc/self/fd magic link). A symlink answers EOPNOTSUPP.
 */
static napi_value js_fchmodat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char name[PATH_MAX];
  double mode;
  if (arg_fd(env, argv[0], "fchmodat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "fchmodat", "name", name)) return NULL;
  if (arg_num(env, argv[2], "fchmodat", "mode", 0, 07777, 0, 0, &mode)) return NULL;
  static int no_fchmodat2;
  if (!no_fchmodat2) {
    if (syscall(SYS_fchmodat2, dirfd, name, (mode_t)mode, AT_SYMLINK_NOFOLLOW) == 0) return NULL;
    if (errno != ENOSYS) { throw_sys(env, errno, "fchmodat", name, NULL, NULL); return NULL; }
    no_fchmodat2 = 1;
  }
  if (fchmodat(dirfd, name, (mode_t)mode, AT_SYMLINK_NOFOLLOW) != 0) throw_sys(env, errno, "fchmodat", name, NULL, NULL);
  return NULL;
}

static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char name[PATH_MAX];
  double mode;
  if (arg_fd(env, argv[0], "mkdirat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "mkdirat", "name", name)) return NULL;
  if (arg_num(env, argv[2], "mkdirat", "mode", 0, 07777, 1, 0777, &mode)) return NULL;
  if (mkdirat(dirfd, name, (mode_t)mode) != 0) throw_sys(env, errno, "mkdirat", name, NULL, NULL);
  return NULL;
}

static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd, flags;
  char name[PATH_MAX];
  if (arg_fd(env, argv[0], "unlinkat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "unlinkat", "name", name)) return NULL;
  if (arg_flags(env, argv[2], "unlinkat", &flags)) return NULL;
  if (unlinkat(dirfd, name, flags) != 0) throw_sys(env, errno, "unlinkat", name, NULL, NULL);
  return NULL;
}

/**
 * faccessat(dirfd, name, mode): whether this thread's filesystem credentials (the caller's,
 * under becomeCaller) may access name (R_OK 4, W_OK 2, X_OK 1) — the kernel's own check
 * (AT_EACCESS: fsuid/fsgid and groups, not the real ids). A final symlink is checked as itself.
 */
static napi_value js_faccessat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  double mode;
  char name[PATH_MAX];
  if (arg_fd(env, argv[0], "faccessat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "faccessat", "name", name)) return NULL;
  if (arg_num(env, argv[2], "faccessat", "mode", 0, 7, 0, 0, &mode)) return NULL;
  if (faccessat(dirfd, name, (int)mode, AT_EACCESS | AT_SYMLINK_NOFOLLOW) != 0) throw_sys(env, errno, "faccessat", name, NULL, NULL);
  return NULL;
}

static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  ARGS(5);
  int olddirfd, newdirfd, flags;
  char oldname[PATH_MAX], newname[PATH_MAX];
  if (arg_fd(env, argv[0], "renameat2", "olddirfd", &olddirfd)) return NULL;
  if (arg_name(env, argv[1], "renameat2", "oldname", oldname)) return NULL;
  if (arg_fd(env, argv[2], "renameat2", "newdirfd", &newdirfd)) return NULL;
  if (arg_name(env, argv[3], "renameat2", "newname", newname)) return NULL;
  if (arg_flags(env, argv[4], "renameat2", &flags)) return NULL;
  if (syscall(SYS_renameat2, olddirfd, oldname, newdirfd, newname, (unsigned int)flags) != 0)
    throw_sys(env, errno, "renameat2", oldname, newname, NULL);
  return NULL;
}

static napi_value js_linkat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int olddirfd, newdirfd, flags;
  char oldname[PATH_MAX], newname[PATH_MAX];
  if (arg_fd(env, argv[0], "linkat", "olddirfd", &olddirfd)) return NULL;
  if (arg_name(env, argv[1], "linkat", "oldname", oldname)) return NULL;
  if (arg_fd(env, argv[2], "linkat", "newdirfd", &newdirfd)) return NULL;
  if (arg_name(env, argv[3], "linkat", "newname", newname)) return NULL;
  if (arg_flags(env, argv[4], "linkat", &flags)) return NULL;
  if (flags & AT_SYMLINK_FOLLOW) {
    throw_sys(env, EINVAL, "linkat", oldname, newname, "AT_SYMLINK_FOLLOW is refused (it follows a final symlink)");
    return NULL;
  }
  if (linkat(olddirfd, oldname, newdirfd, newname, flags) != 0)
    throw_sys(env, errno, "linkat", oldname, newname, NULL);
  return NULL;
}

static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char target[PATH_MAX], name[PATH_MAX];
  if (arg_path(env, argv[0], "symlinkat", "symlinkat", "target", target)) return NULL;
  if (arg_fd(env, argv[1], "symlinkat", "newdirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[2], "symlinkat", "name", name)) return NULL;
  if (symlinkat(target, dirfd, name) != 0) throw_sys(env, errno, "symlinkat", target, name, NULL);
  return NULL;
}

static napi_value js_readlinkat(napi_env env, napi_callback_info info) {
  ARGS(2);
  int dirfd;
  char name[PATH_MAX], target[PATH_MAX];
  if (arg_fd(env, argv[0], "readlinkat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "readlinkat", "name", name)) return NULL;
  ssize_t n = readlinkat(dirfd, name, target, sizeof target);
  if (n < 0) { throw_sys(env, errno, "readlinkat", name, NULL, NULL); return NULL; }
  napi_value v;
  if (napi_create_string_utf8(env, target, (size_t)n, &v) != napi_ok) return NULL;
  return v;
}

static double ms_of(struct timespec ts) {
  /* Node's arithmetic (msFromTimeSpec), so the values equal fs.Stats' *Ms exactly. */
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int set_num(napi_env env, napi_value o, const char *key, double d) {
  return napi_set_named_property(env, o, key, number(env, d)) == napi_ok ? 0 : -1;
}

static napi_value js_fstatat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd, flags;
  char name[PATH_MAX];
  if (arg_fd(env, argv[0], "fstatat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "fstatat", "name", name)) return NULL;
  if (arg_flags(env, argv[2], "fstatat", &flags)) return NULL;
  struct stat st;
  if (fstatat(dirfd, name, &st, flags | AT_SYMLINK_NOFOLLOW) != 0) {
    throw_sys(env, errno, "fstatat", name, NULL, NULL);
    return NULL;
  }
  napi_value o;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  if (set_num(env, o, "dev", (double)st.st_dev) || set_num(env, o, "ino", (double)st.st_ino) ||
      set_num(env, o, "mode", st.st_mode) || set_num(env, o, "nlink", (double)st.st_nlink) ||
      set_num(env, o, "uid", st.st_uid) || set_num(env, o, "gid", st.st_gid) ||
      set_num(env, o, "rdev", (double)st.st_rdev) || set_num(env, o, "size", (double)st.st_size) ||
      set_num(env, o, "blksize", (double)st.st_blksize) || set_num(env, o, "blocks", (double)st.st_blocks) ||
      set_num(env, o, "atimeMs", ms_of(st.st_atim)) || set_num(env, o, "mtimeMs", ms_of(st.st_mtim)) ||
      set_num(env, o, "ctimeMs", ms_of(st.st_ctim)))
    return NULL;
  return o;
}

/**
 * fstatatInto(dirfd, name, out): lstat of name into out (a Float64Array of at least 13: dev,
 * ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atimeMs, mtimeMs, ctimeMs); true,
 * or false for a missing name (ENOENT), anything else thrown. An array filled in place costs
 * a third of an object with 13 properties made here (as Node's own lstat does it).
 */
static napi_value js_fstatat_into(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char name[PATH_MAX];
  if (arg_fd(env, argv[0], "fstatatInto", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "fstatatInto", "name", name)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[2], &is_ta);
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (is_ta && napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL) != napi_ok) return NULL;
  if (!is_ta || type != napi_float64_array || len < 13) { throw_type(env, "fstatatInto", "out", "a Float64Array of 13 or more"); return NULL; }
  struct stat st;
  napi_value r;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) { napi_get_boolean(env, false, &r); return r; }
    throw_sys(env, errno, "fstatat", name, NULL, NULL);
    return NULL;
  }
  double *o = data;
  o[0] = (double)st.st_dev; o[1] = (double)st.st_ino; o[2] = st.st_mode; o[3] = (double)st.st_nlink;
  o[4] = st.st_uid; o[5] = st.st_gid; o[6] = (double)st.st_rdev; o[7] = (double)st.st_size;
  o[8] = (double)st.st_blksize; o[9] = (double)st.st_blocks;
  o[10] = ms_of(st.st_atim); o[11] = ms_of(st.st_mtim); o[12] = ms_of(st.st_ctim);
  napi_get_boolean(env, true, &r);
  return r;
}

/** A utimensat time: null/undefined = UTIME_OMIT, "now" = UTIME_NOW, else ms since the epoch. */
static int arg_time(napi_env env, napi_value v, const char *what, struct timespec *ts) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) { ts->tv_sec = 0; ts->tv_nsec = UTIME_OMIT; return 0; }
  if (t == napi_string) {
    char s[8];
    size_t len;
    if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok) return -1;
    if (strcmp(s, "now") == 0) { ts->tv_sec = 0; ts->tv_nsec = UTIME_NOW; return 0; }
  } else if (t == napi_number) {
    double ms;
    if (napi_get_value_double(env, v, &ms) != napi_ok) return -1;
    if (isfinite(ms) && fabs(ms) <= 8.64e15) {
      double sec = floor(ms / 1e3);
      long nsec = (long)llround((ms - sec * 1e3) * 1e6);
      if (nsec >= 1000000000L) { sec += 1; nsec -= 1000000000L; }
      if (nsec < 0) { sec -= 1; nsec += 1000000000L; }
      ts->tv_sec = (time_t)sec;
      ts->tv_nsec = nsec;
      return 0;
    }
  }
  throw_type(env, "utimensat", what, "a finite number of ms, null (leave as is) or 'now'");
  return -1;
}

static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int dirfd, flags;
  char name[PATH_MAX];
  struct timespec ts[2];
  if (arg_fd(env, argv[0], "utimensat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "utimensat", "name", name)) return NULL;
  if (arg_time(env, argv[2], "atimeMs", &ts[0])) return NULL;
  if (arg_time(env, argv[3], "mtimeMs", &ts[1])) return NULL;
  if (arg_flags(env, argv[4], "utimensat", &flags)) return NULL;
  if (utimensat(dirfd, name, ts, flags | AT_SYMLINK_NOFOLLOW) != 0) throw_sys(env, errno, "utimensat", name, NULL, NULL);
  return NULL;
}

// ---- extended attributes of one name ----------------------------------------------------

/*
 * The *xattrat() system calls (Linux 6.13: getxattrat, setxattrat, listxattrat,
 * removexattrat; the same numbers on every architecture but alpha) act on a name relative to
 * a directory fd, with AT_SYMLINK_NOFOLLOW. Without them (ENOSYS) the l*xattr() calls go to
 * "/proc/self/fd/<dirfd>/<name>": the magic link of the directory fd leads exactly to the
 * directory the fd was resolved to, the name is resolved in it, and a final symlink is not
 * followed, so both ways act on the same entry. Either way nothing is re-resolved from the
 * brick root.
 */
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif

/** The kernel's struct xattr_args (linux/xattr.h, 6.13). */
struct brick_xattr_args {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

#define XATTR_VALUE_MAX 65536
#define XATTR_FIRST_TRY 256
#define XATTR_LIST_FIRST_TRY 4096
static int has_xattrat;
static char xattr_buf[XATTR_VALUE_MAX];

/** "/proc/self/fd/<dirfd>/<name>" for the l*xattr fallback. */
static void proc_path(char *out, size_t len, int dirfd, const char *name) {
  snprintf(out, len, "/proc/self/fd/%d/%s", dirfd, name);
}

/** An xattr name argument: a string below 256 bytes (XATTR_NAME_MAX), else ERANGE as the kernel says. */
static int arg_xname(napi_env env, napi_value v, const char *fn, char *buf) {
  if (arg_path(env, v, fn, fn, "attr", buf)) return -1;
  if (strlen(buf) > 255 || buf[0] == 0) { throw_sys(env, ERANGE, fn, buf, NULL, NULL); return -1; }
  return 0;
}

static ssize_t do_getxattrat(int dirfd, const char *name, const char *attr, void *buf, size_t size) {
  if (has_xattrat) {
    struct brick_xattr_args a = { (uint64_t)(uintptr_t)buf, (uint32_t)size, 0 };
    return syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, attr, &a, sizeof a);
  }
  char p[PATH_MAX + 64];
  proc_path(p, sizeof p, dirfd, name);
  return lgetxattr(p, attr, buf, size);
}

/** getxattrat(dirfd, name, attr): the value as a Buffer, or null when the entry has no such attribute (ENODATA). */
static napi_value js_getxattrat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char name[PATH_MAX], attr[PATH_MAX];
  if (arg_fd(env, argv[0], "getxattrat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "getxattrat", "name", name)) return NULL;
  if (arg_xname(env, argv[2], "getxattrat", attr)) return NULL;
  /* A small buffer first: the kernel allocates (and zeroes) as many bytes as asked for, and
     brickfs' own values are a few bytes. ERANGE: ask the size, then read that much. */
  ssize_t n = do_getxattrat(dirfd, name, attr, xattr_buf, XATTR_FIRST_TRY);
  for (int tries = 0; n < 0 && errno == ERANGE && tries < 3; tries++) {
    ssize_t want = do_getxattrat(dirfd, name, attr, NULL, 0);
    if (want < 0) { n = want; break; }
    n = do_getxattrat(dirfd, name, attr, xattr_buf, want > XATTR_VALUE_MAX ? XATTR_VALUE_MAX : (size_t)want);
  }
  if (n < 0) {
    napi_value nul;
    if (errno == ENODATA) { napi_get_null(env, &nul); return nul; }
    throw_sys(env, errno, "getxattrat", name, NULL, NULL);
    return NULL;
  }
  napi_value out;
  if (napi_create_buffer_copy(env, (size_t)n, xattr_buf, NULL, &out) != napi_ok) return NULL;
  return out;
}

/** The bytes of a Buffer or any TypedArray/DataView. */
static int arg_bytes(napi_env env, napi_value v, const char *fn, const char *what, void **data, size_t *len) {
  bool ok = false;
  napi_is_typedarray(env, v, &ok);
  if (ok) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, data, &ab, &offset) != napi_ok) return -1;
    size_t el = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: el = 1;
    }
    *len = count * el;
    return 0;
  }
  napi_is_buffer(env, v, &ok);
  if (ok) return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
  throw_type(env, fn, what, "a Buffer or a Uint8Array");
  return -1;
}

/** setxattrat(dirfd, name, attr, value, flags): flags XATTR_CREATE (1) / XATTR_REPLACE (2). */
static napi_value js_setxattrat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int dirfd, flags;
  char name[PATH_MAX], attr[PATH_MAX];
  void *data;
  size_t len;
  if (arg_fd(env, argv[0], "setxattrat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "setxattrat", "name", name)) return NULL;
  if (arg_xname(env, argv[2], "setxattrat", attr)) return NULL;
  if (arg_bytes(env, argv[3], "setxattrat", "value", &data, &len)) return NULL;
  if (arg_flags(env, argv[4], "setxattrat", &flags)) return NULL;
  if (len > XATTR_VALUE_MAX) { throw_sys(env, E2BIG, "setxattrat", name, NULL, NULL); return NULL; }
  long r;
  if (has_xattrat) {
    struct brick_xattr_args a = { (uint64_t)(uintptr_t)data, (uint32_t)len, (uint32_t)flags };
    r = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, attr, &a, sizeof a);
  } else {
    char p[PATH_MAX + 64];
    proc_path(p, sizeof p, dirfd, name);
    r = lsetxattr(p, attr, data, len, flags);
  }
  if (r != 0) throw_sys(env, errno, "setxattrat", name, NULL, NULL);
  return NULL;
}

static ssize_t do_listxattrat(int dirfd, const char *name, char *buf, size_t size) {
  if (has_xattrat) return syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, buf, size);
  char p[PATH_MAX + 64];
  proc_path(p, sizeof p, dirfd, name);
  return llistxattr(p, buf, size);
}

/** listxattrat(dirfd, name): the attribute names (those the caller may see). */
static napi_value js_listxattrat(napi_env env, napi_callback_info info) {
  ARGS(2);
  int dirfd;
  char name[PATH_MAX];
  if (arg_fd(env, argv[0], "listxattrat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "listxattrat", "name", name)) return NULL;
  ssize_t n = do_listxattrat(dirfd, name, xattr_buf, XATTR_LIST_FIRST_TRY);
  for (int tries = 0; n < 0 && errno == ERANGE && tries < 3; tries++) {
    ssize_t want = do_listxattrat(dirfd, name, NULL, 0);
    if (want < 0) { n = want; break; }
    n = do_listxattrat(dirfd, name, xattr_buf, want > XATTR_VALUE_MAX ? XATTR_VALUE_MAX : (size_t)want);
  }
  if (n < 0) { throw_sys(env, errno, "listxattrat", name, NULL, NULL); return NULL; }
  napi_value arr;
  if (napi_create_array(env, &arr) != napi_ok) return NULL;
  uint32_t i = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strnlen(xattr_buf + off, (size_t)(n - off));
    if (l > 0) {
      napi_value s;
      if (napi_create_string_utf8(env, xattr_buf + off, l, &s) != napi_ok) return NULL;
      napi_set_element(env, arr, i++, s);
    }
    off += (ssize_t)l + 1;
  }
  return arr;
}

/** removexattrat(dirfd, name, attr). */
static napi_value js_removexattrat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int dirfd;
  char name[PATH_MAX], attr[PATH_MAX];
  if (arg_fd(env, argv[0], "removexattrat", "dirfd", &dirfd)) return NULL;
  if (arg_name(env, argv[1], "removexattrat", "name", name)) return NULL;
  if (arg_xname(env, argv[2], "removexattrat", attr)) return NULL;
  long r;
  if (has_xattrat) r = syscall(SYS_removexattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, attr);
  else {
    char p[PATH_MAX + 64];
    proc_path(p, sizeof p, dirfd, name);
    r = lremovexattr(p, attr);
  }
  if (r != 0) throw_sys(env, errno, "removexattrat", name, NULL, NULL);
  return NULL;
}

/** The *xattrat calls exist when getxattrat on "/" answers anything but ENOSYS (a seccomp filter may say EPERM: fall back too). */
static int probe_xattrat(void) {
  char b[1];
  struct brick_xattr_args a = { (uint64_t)(uintptr_t)b, sizeof b, 0 };
  long r = syscall(SYS_getxattrat, AT_FDCWD, "/", AT_SYMLINK_NOFOLLOW, "user.brickfs-probe", &a, sizeof a);
  return r >= 0 || (errno != ENOSYS && errno != EPERM);
}

// ---- per-thread filesystem credentials ---------------------------------------------------


/**
 * becomeCaller(uid, gid, groups): this thread's filesystem credentials become a caller's, in
 * one crossing: supplementary groups first (the raw setgroups syscall, which holds for the
 * calling thread only; glibc's wrapper would change every thread of the process), then
 * fsgid, then fsuid. becomeRoot() undoes it. The brick calls them around synchronous calls.
 */
#define MAX_CALLER_GROUPS 1024
static gid_t root_groups[MAX_CALLER_GROUPS];
static int root_ngroups = -1;

static napi_value js_become_caller(napi_env env, napi_callback_info info) {
  ARGS(3);
  double uid, gid;
  if (arg_num(env, argv[0], "becomeCaller", "uid", 0, 4294967294.0, 0, 0, &uid)) return NULL;
  if (arg_num(env, argv[1], "becomeCaller", "gid", 0, 4294967294.0, 0, 0, &gid)) return NULL;
  bool is_array = false;
  napi_is_array(env, argv[2], &is_array);
  if (!is_array) { throw_type(env, "becomeCaller", "groups", "an array"); return NULL; }
  uint32_t n = 0;
  napi_get_array_length(env, argv[2], &n);
  if (n > MAX_CALLER_GROUPS) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "becomeCaller: too many groups"); return NULL; }
  gid_t groups[MAX_CALLER_GROUPS];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    double g;
    napi_get_element(env, argv[2], i, &v);
    if (arg_num(env, v, "becomeCaller", "group", 0, 4294967294.0, 0, 0, &g)) return NULL;
    groups[i] = (gid_t)g;
  }
  if (root_ngroups < 0) {
    root_ngroups = getgroups(MAX_CALLER_GROUPS, root_groups);
    if (root_ngroups < 0) root_ngroups = 0;
  }
  if (syscall(SYS_setgroups, (size_t)n, groups) != 0) { throw_sys(env, errno, "setgroups", NULL, NULL, NULL); return NULL; }
  setfsgid((gid_t)gid);
  setfsuid((uid_t)uid);
  if ((uint32_t)setfsuid((uid_t)-1) != (uint32_t)uid || (uint32_t)setfsgid((gid_t)-1) != (uint32_t)gid) {
    setfsuid(0);
    setfsgid(0);
    syscall(SYS_setgroups, (size_t)root_ngroups, root_groups);
    throw_sys(env, EPERM, "setfsuid", NULL, NULL, NULL);
  }
  return NULL;
}

static napi_value js_become_root(napi_env env, napi_callback_info info) {
  setfsuid(0);
  setfsgid(0);
  if (root_ngroups >= 0) syscall(SYS_setgroups, (size_t)root_ngroups, root_groups);
  return NULL;
}

// ---- module ------------------------------------------------------------------------------

/** openat2 exists when "/" opens through it (ENOSYS on kernels before 5.6; some seccomp filters say EPERM). */
static int probe_openat2(void) {
  struct brick_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  long fd = sys_openat2(AT_FDCWD, "/", &how);
  if (fd < 0) return 0;
  close((int)fd);
  return 1;
}

static void set_const(napi_env env, napi_value exports, const char *name, double value) {
  napi_property_descriptor p = { name, NULL, NULL, NULL, NULL, number(env, value), napi_enumerable, NULL };
  napi_define_properties(env, exports, 1, &p);
}

static napi_value init(napi_env env, napi_value exports) {
  has_openat2 = probe_openat2();
  has_xattrat = getenv("BRICKFS_NO_XATTRAT") ? 0 : probe_xattrat();
  napi_property_descriptor props[] = {
    { "mknodat", NULL, js_mknodat, NULL, NULL, NULL, napi_default, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL },
    { "makedev", NULL, js_makedev, NULL, NULL, NULL, napi_default, NULL },
    { "major", NULL, js_major, NULL, NULL, NULL, napi_default, NULL },
    { "minor", NULL, js_minor, NULL, NULL, NULL, napi_default, NULL },
    { "openat2", NULL, js_openat2, NULL, NULL, NULL, napi_default, NULL },
    { "fchownat", NULL, js_fchownat, NULL, NULL, NULL, napi_default, NULL },
    { "mkdirat", NULL, js_mkdirat, NULL, NULL, NULL, napi_default, NULL },
    { "fchmodat", NULL, js_fchmodat, NULL, NULL, NULL, napi_default, NULL },
    { "unlinkat", NULL, js_unlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "faccessat", NULL, js_faccessat, NULL, NULL, NULL, napi_default, NULL },
    { "renameat2", NULL, js_renameat2, NULL, NULL, NULL, napi_default, NULL },
    { "linkat", NULL, js_linkat, NULL, NULL, NULL, napi_default, NULL },
    { "symlinkat", NULL, js_symlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "readlinkat", NULL, js_readlinkat, NULL, NULL, NULL, napi_default, NULL },
    { "fstatat", NULL, js_fstatat, NULL, NULL, NULL, napi_default, NULL },
    { "utimensat", NULL, js_utimensat, NULL, NULL, NULL, napi_default, NULL },
    { "fstatatInto", NULL, js_fstatat_into, NULL, NULL, NULL, napi_default, NULL },
    { "getxattrat", NULL, js_getxattrat, NULL, NULL, NULL, napi_default, NULL },
    { "setxattrat", NULL, js_setxattrat, NULL, NULL, NULL, napi_default, NULL },
    { "listxattrat", NULL, js_listxattrat, NULL, NULL, NULL, napi_default, NULL },
    { "removexattrat", NULL, js_removexattrat, NULL, NULL, NULL, napi_default, NULL },
    { "becomeCaller", NULL, js_become_caller, NULL, NULL, NULL, napi_default, NULL },
    { "becomeRoot", NULL, js_become_root, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;

  napi_value b;
  napi_get_boolean(env, has_openat2, &b);
  napi_property_descriptor hp = { "hasOpenat2", NULL, NULL, NULL, NULL, b, napi_enumerable, NULL };
  napi_define_properties(env, exports, 1, &hp);
  napi_get_boolean(env, has_xattrat, &b);
  napi_property_descriptor hx = { "hasXattrat", NULL, NULL, NULL, NULL, b, napi_enumerable, NULL };
  napi_define_properties(env, exports, 1, &hx);

  set_const(env, exports, "RESOLVE_NO_XDEV", RESOLVE_NO_XDEV);
  set_const(env, exports, "RESOLVE_NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS);
  set_const(env, exports, "RESOLVE_NO_SYMLINKS", RESOLVE_NO_SYMLINKS);
  set_const(env, exports, "RESOLVE_BENEATH", RESOLVE_BENEATH);
  set_const(env, exports, "RESOLVE_IN_ROOT", RESOLVE_IN_ROOT);
  set_const(env, exports, "RESOLVE_CACHED", RESOLVE_CACHED);
  set_const(env, exports, "O_PATH", O_PATH);
  set_const(env, exports, "O_DIRECTORY", O_DIRECTORY);
  set_const(env, exports, "O_NOFOLLOW", O_NOFOLLOW);
  set_const(env, exports, "O_CLOEXEC", O_CLOEXEC);
  set_const(env, exports, "AT_FDCWD", AT_FDCWD);
  set_const(env, exports, "AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW);
  set_const(env, exports, "AT_SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW);
  set_const(env, exports, "AT_EMPTY_PATH", AT_EMPTY_PATH);
  set_const(env, exports, "AT_REMOVEDIR", AT_REMOVEDIR);
  set_const(env, exports, "RENAME_NOREPLACE", RENAME_NOREPLACE);
  set_const(env, exports, "RENAME_EXCHANGE", RENAME_EXCHANGE);
  set_const(env, exports, "RENAME_WHITEOUT", RENAME_WHITEOUT);
  set_const(env, exports, "XATTR_CREATE", XATTR_CREATE);
  set_const(env, exports, "XATTR_REPLACE", XATTR_REPLACE);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
