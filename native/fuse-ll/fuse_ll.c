// A lean binding of libfuse 3's low-level API for brickfs, served on the Node main thread.
// The /dev/fuse channel is non-blocking and polled by libuv; each readable wakeup reads up
// to POLL_BATCH requests and hands them to JavaScript synchronously. JavaScript answers
// later through the reply functions below. No thread handoff on any request (fuse-native's
// worker thread -> uv_async -> semaphore round trip cost ~115 us per request).
// client/fuse/lowlevel-bridge.ts is the only user. libfuse 3 (not 2) for requests of up to
// 1 MiB (FUSE_MAX_PAGES: 8x fewer crossings on sequential I/O) and readdirplus.
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <fuse_lowlevel.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <uv.h>

/** Requests handled per wakeup before yielding to the event loop. */
#define POLL_BATCH 64
#define NAME_BUF 4096
/** The largest read or write the kernel sends (lowlevel-bridge.ts MAX_WRITE_BYTES). */
#define MAX_REQUEST_BYTES (1024 * 1024)
/** Kernel cache invalidations waiting for the notify thread at most; more are dropped (the caches then expire by timeout). */
#define NOTIFY_QUEUE_MAX 65536

/** One kernel cache invalidation: an inode's attributes and pages (namelen 0), or a name in a directory. */
struct inval {
  struct inval *next;
  fuse_ino_t ino;
  size_t namelen;
  char name[];
};

enum op {
  OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK,
  OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE,
  OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR,
  OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE, OP_READDIRPLUS, OP_COUNT
};

static const char *OP_NAMES[OP_COUNT] = {
  "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink",
  "rmdir", "symlink", "rename", "link", "open", "read", "write", "flush", "release",
  "fsync", "opendir", "readdir", "releasedir", "statfs", "setxattr", "getxattr",
  "listxattr", "removexattr", "access", "create", "readdirplus",
};

typedef struct session {
  napi_env env;
  struct fuse_session *se;
  /** The receive buffer (libfuse allocates .mem at the first read, sized for 1 MiB + header). */
  struct fuse_buf fbuf;
  char *mountpoint;
  uv_poll_t *poll;
  napi_ref handlers[OP_COUNT];
  napi_ref ended_cb;
  napi_ref resource;
  napi_async_context actx;
  /** Requests handed to JavaScript and not answered yet. */
  long outstanding;
  int dispatching;
  /** The scopes JavaScript runs in during a dispatch, opened at its first call (enter_js). */
  int in_js;
  napi_handle_scope js_hs;
  napi_callback_scope js_cs;
  /** unmount() was called: the session goes once no request is outstanding. */
  int closed;
  /** The kernel ended the session: nothing left to unmount. */
  int ended;
  /** FUSE_INIT was answered (ll_init): the kernel has set the connection up (initialized()). */
  int initialized;
  /** Ask for the kernel's writeback cache at FUSE_INIT (setWritebackCache, before the first poll). */
  int want_writeback;
  /** The kernel granted it (writebackCache()). */
  int writeback;
  int freed;
  /**
   * Write slabs lent by JavaScript (setWriteSlabs): a write's payload is copied into a free
   * one instead of a fresh Buffer, which V8 would count as external memory and answer with
   * full garbage collections. busy[i] is set here and cleared by JavaScript when done.
   */
  napi_ref slabs_ref;
  char **slab_ptr;
  uint8_t *slab_busy;
  size_t slab_count;
  size_t slab_len;
  /**
   * Kernel cache invalidations (fuse_lowlevel_notify_inval_inode/_entry) are written by their
   * own thread, fed through this queue, never by the main thread: the kernel may hold a
   * directory's lock (or a page's) while it waits for an answer that only the main thread
   * sends, and a notification about that directory waits for the lock. Started at the first
   * invalidation (a mount that gets none has no thread); stopped before /dev/fuse closes.
   */
  pthread_mutex_t notify_mu;
  pthread_cond_t notify_cv;
  pthread_t notify_thread;
  struct inval *notify_head, *notify_tail;
  size_t notify_len;
  int notify_started, notify_stop, notify_exited, notify_joined;
  /** Sent, not in the kernel's cache (ENOENT, normal), failed, dropped (queue full). */
  double notify_sent, notify_enoent, notify_failed, notify_dropped;
  /**
   * The caller of the request being handed to JavaScript (setCallerBuffer): uid, gid, pid,
   * umask, written before each handler runs, read by it synchronously. A shared array
   * instead of four more arguments per request.
   */
  napi_ref caller_ref;
  uint32_t *caller;
} session_t;

#define NAPI_OK(call) do { if ((call) != napi_ok) { return NULL; } } while (0)

static void throw_errno(napi_env env, const char *what, int err) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
}

// ---- session teardown --------------------------------------------------------------------

static void on_poll_closed(uv_handle_t *h) { free(h); }

static void stop_polling(session_t *s) {
  if (!s->poll) return;
  uv_poll_stop(s->poll);
  uv_close((uv_handle_t *)s->poll, on_poll_closed);
  s->poll = NULL;
}

// ---- kernel cache invalidation (the notify thread) ------------------------------------------

static void *notify_main(void *arg) {
  session_t *s = arg;
  pthread_mutex_lock(&s->notify_mu);
  for (;;) {
    while (!s->notify_head && !s->notify_stop) pthread_cond_wait(&s->notify_cv, &s->notify_mu);
    if (s->notify_stop) break;
    struct inval *v = s->notify_head;
    s->notify_head = v->next;
    if (!s->notify_head) s->notify_tail = NULL;
    s->notify_len--;
    pthread_mutex_unlock(&s->notify_mu);
    // May block until the main thread answers a request the kernel waits for (see session_t).
    int r = v->namelen ? fuse_lowlevel_notify_inval_entry(s->se, v->ino, v->name, v->namelen)
                       : fuse_lowlevel_notify_inval_inode(s->se, v->ino, 0, 0);
    free(v);
    pthread_mutex_lock(&s->notify_mu);
    if (r == 0) s->notify_sent++;
    else if (r == -ENOENT) s->notify_enoent++; // not in the kernel's cache: nothing to drop
    else s->notify_failed++;
  }
  s->notify_exited = 1;
  pthread_mutex_unlock(&s->notify_mu);
  return NULL;
}

/** Queues one invalidation, starting the thread at the first; 0 or an errno. */
static int notify_enqueue(session_t *s, fuse_ino_t ino, const char *name, size_t namelen) {
  struct inval *v = malloc(sizeof *v + namelen + 1);
  if (!v) return ENOMEM;
  v->next = NULL;
  v->ino = ino;
  v->namelen = namelen;
  if (namelen) memcpy(v->name, name, namelen);
  v->name[namelen] = 0;
  pthread_mutex_lock(&s->notify_mu);
  if (s->notify_stop || s->notify_len >= NOTIFY_QUEUE_MAX) {
    s->notify_dropped++;
    pthread_mutex_unlock(&s->notify_mu);
    free(v);
    return 0;
  }
  if (!s->notify_started) {
    // The thread takes no signals: Node's handlers run on the main thread.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&s->notify_thread, NULL, notify_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
      pthread_mutex_unlock(&s->notify_mu);
      free(v);
      return err;
    }
    s->notify_started = 1;
  }
  if (s->notify_tail) s->notify_tail->next = v;
  else s->notify_head = v;
  s->notify_tail = v;
  s->notify_len++;
  pthread_cond_signal(&s->notify_cv);
  pthread_mutex_unlock(&s->notify_mu);
  return 0;
}

/** Asks the thread to stop, dropping what is queued; 1 once it has exited (or never ran). */
static int notify_stop(session_t *s) {
  pthread_mutex_lock(&s->notify_mu);
  s->notify_stop = 1;
  while (s->notify_head) {
    struct inval *v = s->notify_head;
    s->notify_head = v->next;
    free(v);
  }
  s->notify_tail = NULL;
  s->notify_len = 0;
  pthread_cond_signal(&s->notify_cv);
  int done = !s->notify_started || s->notify_exited;
  pthread_mutex_unlock(&s->notify_mu);
  return done;
}

/**
 * Stops the thread and waits for it; before /dev/fuse closes. lowlevel-bridge.ts waits (still
 * serving requests) until notify_stop() says the thread is out, so this join does not block;
 * when the kernel ended the session, a notification in progress fails at once.
 */
static void notify_join(session_t *s) {
  notify_stop(s);
  if (s->notify_started && !s->notify_joined) {
    pthread_join(s->notify_thread, NULL);
    s->notify_joined = 1;
  }
}

/** Frees libfuse's session; only when no request can still be answered. */
static void maybe_free(session_t *s) {
  if (!s->closed || s->outstanding > 0 || s->dispatching || s->freed) return;
  s->freed = 1;
  notify_join(s);
  pthread_mutex_destroy(&s->notify_mu);
  pthread_cond_destroy(&s->notify_cv);
  if (s->se) {
    // Closes /dev/fuse if unmounting has not.
    fuse_session_destroy(s->se);
    s->se = NULL;
  }
  for (int i = 0; i < OP_COUNT; i++) if (s->handlers[i]) napi_delete_reference(s->env, s->handlers[i]);
  if (s->ended_cb) napi_delete_reference(s->env, s->ended_cb);
  if (s->resource) napi_delete_reference(s->env, s->resource);
  if (s->slabs_ref) napi_delete_reference(s->env, s->slabs_ref);
  if (s->caller_ref) napi_delete_reference(s->env, s->caller_ref);
  s->caller = NULL;
  free(s->slab_ptr);
  napi_async_destroy(s->env, s->actx);
  free(s->fbuf.mem);
  free(s->mountpoint);
  free(s);
}

// ---- calling into JavaScript -------------------------------------------------------------

static session_t *sess(fuse_req_t req) { return (session_t *)fuse_req_userdata(req); }

/**
 * Opens the scopes for calls into JavaScript, once per wakeup and only when one is needed
 * (requests answered in C pay nothing). Closing the callback scope runs the promise jobs and
 * nextTicks the handlers queued.
 */
static void enter_js(session_t *s) {
  napi_value resource;
  if (s->in_js) return;
  napi_open_handle_scope(s->env, &s->js_hs);
  napi_get_reference_value(s->env, s->resource, &resource);
  napi_open_callback_scope(s->env, resource, s->actx, &s->js_cs);
  s->in_js = 1;
}

static void leave_js(session_t *s) {
  if (!s->in_js) return;
  s->in_js = 0;
  napi_close_callback_scope(s->env, s->js_cs);
  napi_close_handle_scope(s->env, s->js_hs);
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value str(napi_env env, const char *v) {
  napi_value r;
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value reqv(napi_env env, fuse_req_t req) {
  napi_value r;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)req, &r);
  return r;
}

/** Calls handler op with argv; a request passed in argv[0] counts as outstanding. */
static void call_js(session_t *s, enum op op, fuse_req_t req, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, global, result;
  if (req) {
    s->outstanding++;
    if (s->caller) {
      const struct fuse_ctx *c = fuse_req_ctx(req);
      s->caller[0] = c->uid;
      s->caller[1] = c->gid;
      s->caller[2] = (uint32_t)c->pid;
      s->caller[3] = c->umask;
    }
  }
  napi_get_reference_value(env, s->handlers[op], &fn);
  napi_get_global(env, &global);
  if (napi_call_function(env, global, fn, argc, argv, &result) != napi_ok) {
    napi_value exc;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

// Each low-level callback opens a handle scope, builds its arguments and calls JavaScript.
#define BEGIN(N) \
  session_t *s = sess(req); napi_env env = s->env; napi_handle_scope hs; enter_js(s); \
  napi_open_handle_scope(env, &hs); napi_value argv[N]; argv[0] = reqv(env, req);
#define END(OP, N) call_js(s, OP, req, N, argv); napi_close_handle_scope(env, hs);

static double fhv(struct fuse_file_info *fi) { return fi ? (double)fi->fh : -1; }

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(3) argv[1] = num(env, parent); argv[2] = str(env, name); END(OP_LOOKUP, 3)
}

static void forget_one(session_t *s, fuse_ino_t ino, unsigned long n) {
  napi_env env = s->env;
  napi_handle_scope hs;
  enter_js(s);
  napi_open_handle_scope(env, &hs);
  napi_value argv[2] = { num(env, ino), num(env, n) };
  call_js(s, OP_FORGET, NULL, 2, argv);
  napi_close_handle_scope(env, hs);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  forget_one(sess(req), ino, nlookup);
  fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session_t *s = sess(req);
  for (size_t i = 0; i < count; i++) forget_one(s, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fhv(fi)); END(OP_GETATTR, 3)
}

static double ms_of(const struct timespec *ts) { return (double)ts->tv_sec * 1000.0 + (double)ts->tv_nsec / 1e6; }

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi) {
  BEGIN(10)
  argv[1] = num(env, ino); argv[2] = num(env, to_set); argv[3] = num(env, a->st_mode);
  argv[4] = num(env, a->st_uid); argv[5] = num(env, a->st_gid); argv[6] = num(env, (double)a->st_size);
  argv[7] = num(env, ms_of(&a->st_atim)); argv[8] = num(env, ms_of(&a->st_mtim)); argv[9] = num(env, fhv(fi));
  END(OP_SETATTR, 10)
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  BEGIN(2) argv[1] = num(env, ino); END(OP_READLINK, 2)
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  BEGIN(5) argv[1] = num(env, parent); argv[2] = str(env, name); argv[3] = num(env, mode); argv[4] = num(env, rdev); END(OP_MKNOD, 5)
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  BEGIN(4) argv[1] = num(env, parent); argv[2] = str(env, name); argv[3] = num(env, mode); END(OP_MKDIR, 4)
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(3) argv[1] = num(env, parent); argv[2] = str(env, name); END(OP_UNLINK, 3)
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(3) argv[1] = num(env, parent); argv[2] = str(env, name); END(OP_RMDIR, 3)
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  BEGIN(4) argv[1] = str(env, link); argv[2] = num(env, parent); argv[3] = str(env, name); END(OP_SYMLINK, 4)
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  // RENAME_NOREPLACE / RENAME_EXCHANGE are not atomic across bricks: refused, as libfuse 2
  // did (callers such as mv fall back to a plain rename).
  if (flags) { fuse_reply_err(req, EINVAL); return; }
  BEGIN(5) argv[1] = num(env, parent); argv[2] = str(env, name); argv[3] = num(env, newparent); argv[4] = str(env, newname); END(OP_RENAME, 5)
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  BEGIN(4) argv[1] = num(env, ino); argv[2] = num(env, newparent); argv[3] = str(env, newname); END(OP_LINK, 4)
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fi->flags); END(OP_OPEN, 3)
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(5) argv[1] = num(env, ino); argv[2] = num(env, size); argv[3] = num(env, (double)off); argv[4] = num(env, fhv(fi)); END(OP_READ, 5)
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(6)
  argv[1] = num(env, ino);
  // data points into the receive buffer, which the next request overwrites: copy it into a
  // free write slab (argv[2] is then the slab's index) or, with none free, a new Buffer.
  long slot = -1;
  if (size <= s->slab_len) {
    for (size_t i = 0; i < s->slab_count; i++) {
      if (!s->slab_busy[i]) { slot = (long)i; break; }
    }
  }
  if (slot >= 0) {
    memcpy(s->slab_ptr[slot], data, size);
    s->slab_busy[slot] = 1;
    argv[2] = num(env, (double)slot);
  } else {
    void *copy;
    napi_create_buffer_copy(env, size, data, &copy, &argv[2]);
  }
  argv[3] = num(env, (double)off); argv[4] = num(env, fhv(fi)); argv[5] = num(env, (double)size);
  END(OP_WRITE, 6)
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fhv(fi)); END(OP_FLUSH, 3)
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fhv(fi)); END(OP_RELEASE, 3)
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  BEGIN(4) argv[1] = num(env, ino); argv[2] = num(env, datasync); argv[3] = num(env, fhv(fi)); END(OP_FSYNC, 4)
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fi->flags); END(OP_OPENDIR, 3)
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(5) argv[1] = num(env, ino); argv[2] = num(env, size); argv[3] = num(env, (double)off); argv[4] = num(env, fhv(fi)); END(OP_READDIR, 5)
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(5) argv[1] = num(env, ino); argv[2] = num(env, size); argv[3] = num(env, (double)off); argv[4] = num(env, fhv(fi)); END(OP_READDIRPLUS, 5)
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, fhv(fi)); END(OP_RELEASEDIR, 3)
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  BEGIN(2) argv[1] = num(env, ino); END(OP_STATFS, 2)
}

static int user_ns(const char *name) { return strncmp(name, "user.", 5) == 0; }

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  if (!user_ns(name)) { fuse_reply_err(req, ENOTSUP); return; }
  BEGIN(5)
  argv[1] = num(env, ino); argv[2] = str(env, name);
  void *copy;
  napi_create_buffer_copy(env, size, value, &copy, &argv[3]);
  argv[4] = num(env, flags);
  END(OP_SETXATTR, 5)
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  // The kernel asks security.capability before every write(2): answered here, never in JS.
  if (!user_ns(name)) { fuse_reply_err(req, ENODATA); return; }
  BEGIN(4) argv[1] = num(env, ino); argv[2] = str(env, name); argv[3] = num(env, size); END(OP_GETXATTR, 4)
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, size); END(OP_LISTXATTR, 3)
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  if (!user_ns(name)) { fuse_reply_err(req, ENOTSUP); return; }
  BEGIN(3) argv[1] = num(env, ino); argv[2] = str(env, name); END(OP_REMOVEXATTR, 3)
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  BEGIN(3) argv[1] = num(env, ino); argv[2] = num(env, mask); END(OP_ACCESS, 3)
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  BEGIN(5) argv[1] = num(env, parent); argv[2] = str(env, name); argv[3] = num(env, mode); argv[4] = num(env, fi->flags); END(OP_CREATE, 5)
}

/**
 * What we take of libfuse 3's defaults. Off: atomic O_TRUNC (open would truncate outside
 * replicate's and stripe's transactions; the kernel sends a setattr instead), the kernel
 * leaving suid/sgid clearing to us (HANDLE_KILLPRIV), splice (one thread, plain reads are
 * cheaper) and the writeback cache (another client's writes would not be seen). On: readdirplus
 * (adaptive), parallel lookups in one directory, async direct I/O, auto page-cache invalidation
 * when mtime or size change. Requests of up to 1 MiB: libfuse 3 asks FUSE_MAX_PAGES for
 * max_write, and reads follow the kernel readahead window.
 */
static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  // libfuse writes our answer to FUSE_INIT as soon as this returns, within the same dispatch
  // (fuse_session_process_buf): once JavaScript sees the flag, the kernel has applied it.
  ((session_t *)userdata)->initialized = 1;
  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_SPLICE_READ |
                  FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_WRITEBACK_CACHE);
  conn->want |= conn->capable & (FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS |
                                 FUSE_CAP_ASYNC_DIO | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ASYNC_READ);
  // The writeback cache only when the mount asks (mount -o writeback-cache): the kernel then
  // keeps size and mtime of regular files itself, whatever another client changes.
  session_t *s = userdata;
  if (s->want_writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    s->writeback = 1;
  }
  conn->max_write = MAX_REQUEST_BYTES;
}

static const struct fuse_lowlevel_ops LL_OPS = {
  .init = ll_init, .readdirplus = ll_readdirplus,
  .lookup = ll_lookup, .forget = ll_forget, .forget_multi = ll_forget_multi, .getattr = ll_getattr,
  .setattr = ll_setattr, .readlink = ll_readlink, .mknod = ll_mknod, .mkdir = ll_mkdir,
  .unlink = ll_unlink, .rmdir = ll_rmdir, .symlink = ll_symlink, .rename = ll_rename, .link = ll_link,
  .open = ll_open, .read = ll_read, .write = ll_write, .flush = ll_flush, .release = ll_release,
  .fsync = ll_fsync, .opendir = ll_opendir, .readdir = ll_readdir, .releasedir = ll_releasedir,
  .statfs = ll_statfs, .setxattr = ll_setxattr, .getxattr = ll_getxattr, .listxattr = ll_listxattr,
  .removexattr = ll_removexattr, .access = ll_access, .create = ll_create,
};

// ---- the poll loop -----------------------------------------------------------------------

static void call_ended(session_t *s) {
  napi_value fn, global, result;
  if (!s->ended_cb) return;
  napi_get_reference_value(s->env, s->ended_cb, &fn);
  napi_get_global(s->env, &global);
  napi_call_function(s->env, global, fn, 0, NULL, &result);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  session_t *s = (session_t *)h->data;
  int ended = 0;
  s->dispatching = 1;
  for (int i = 0; i < POLL_BATCH && !s->closed; i++) {
    int n = fuse_session_receive_buf(s->se, &s->fbuf);
    if (n == -EAGAIN || n == -EINTR) break;
    if (n <= 0 || fuse_session_exited(s->se)) {
      // -ENODEV or 0: the kernel ended the session (fusermount -u, umount).
      ended = 1;
      break;
    }
    fuse_session_process_buf(s->se, &s->fbuf);
  }
  if (ended && !s->closed) {
    s->ended = 1;
    stop_polling(s);
    enter_js(s);
    call_ended(s);
  }
  leave_js(s);
  // Only now may the session go (unmount() from a handler or from ended() waits for this).
  s->dispatching = 0;
  maybe_free(s);
}

// ---- exported functions ------------------------------------------------------------------

static void finalize_session(napi_env env, void *data, void *hint) { (void)env; (void)data; (void)hint; }

/** mount(mountpoint, options, handlers, ended) -> session */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mnt[NAME_BUF], opts[NAME_BUF];
  size_t len;
  NAPI_OK(napi_get_value_string_utf8(env, argv[0], mnt, sizeof mnt, &len));
  NAPI_OK(napi_get_value_string_utf8(env, argv[1], opts, sizeof opts, &len));

  session_t *s = calloc(1, sizeof *s);
  s->env = env;
  pthread_mutex_init(&s->notify_mu, NULL);
  pthread_cond_init(&s->notify_cv, NULL);
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value fn;
    napi_valuetype t;
    napi_get_named_property(env, argv[2], OP_NAMES[i], &fn);
    napi_typeof(env, fn, &t);
    if (t != napi_function) {
      char msg[128];
      snprintf(msg, sizeof msg, "handler %s is not a function", OP_NAMES[i]);
      for (int j = 0; j < i; j++) napi_delete_reference(env, s->handlers[j]);
      pthread_mutex_destroy(&s->notify_mu);
      pthread_cond_destroy(&s->notify_cv);
      free(s);
      napi_throw_type_error(env, NULL, msg);
      return NULL;
    }
    napi_create_reference(env, fn, 1, &s->handlers[i]);
  }
  napi_create_reference(env, argv[3], 1, &s->ended_cb);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_create_string_utf8(env, "brickfs:fuse", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->actx);
  s->mountpoint = strdup(mnt);
  s->closed = 1; // until mounted: maybe_free() may release it on failure

  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  fuse_opt_add_arg(&args, "brickfs");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, opts);
  // Options first (an unknown one fails here, before anything is mounted), then the mount.
  s->se = fuse_session_new(&args, &LL_OPS, sizeof LL_OPS, s);
  fuse_opt_free_args(&args);
  if (!s->se) {
    maybe_free(s);
    napi_throw_error(env, NULL, "fuse_session_new failed (an unknown option? libfuse wrote the reason to stderr)");
    return NULL;
  }
  errno = 0;
  if (fuse_session_mount(s->se, mnt) != 0) {
    int err = errno ? errno : EINVAL;
    maybe_free(s);
    throw_errno(env, "fuse_session_mount failed (libfuse wrote the reason to stderr)", err);
    return NULL;
  }
  int fd = fuse_session_fd(s->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  s->poll = malloc(sizeof *s->poll);
  s->poll->data = s;
  int r = uv_poll_init(loop, s->poll, fd);
  if (r != 0) {
    free(s->poll);
    s->poll = NULL;
  } else {
    r = uv_poll_start(s->poll, UV_READABLE, on_readable);
  }
  if (r != 0) {
    stop_polling(s);
    fuse_session_unmount(s->se);
    maybe_free(s);
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  s->closed = 0;
  NAPI_OK(napi_create_external(env, s, finalize_session, NULL, &result));
  return result;
}

static session_t *session_arg(napi_env env, napi_value v) {
  void *p = NULL;
  napi_get_value_external(env, v, &p);
  return (session_t *)p;
}

/** unmount(session): stops serving and unmounts; idempotent. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  if (!s || s->closed) return NULL;
  s->closed = 1;
  stop_polling(s);
  // The notify thread writes to /dev/fuse: it is gone before the fd closes.
  notify_join(s);
  // Detach the mount first (this closes /dev/fuse): requests JavaScript still answers later
  // fail to write, which libfuse reports on stderr.
  if (!s->ended) fuse_session_unmount(s->se);
  maybe_free(s);
  return NULL;
}

/**
 * initialized(session) -> boolean: whether the kernel's FUSE_INIT has been answered. The
 * mount process learns it here, never by a request to its own mount point: a thread of it
 * waiting on its own mount would keep a killed mount process in D state for good. Only
 * while the session is mounted (unmount() may free it).
 */
static napi_value js_initialized(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  NAPI_OK(napi_get_boolean(env, s != NULL && s->initialized, &result));
  return result;
}

/** setWritebackCache(session, on): whether FUSE_INIT asks for the writeback cache; before the kernel's INIT. */
static napi_value js_set_writeback_cache(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = session_arg(env, argv[0]);
  bool on = false;
  napi_get_value_bool(env, argv[1], &on);
  if (s) s->want_writeback = on;
  return NULL;
}

/** writebackCache(session): whether the kernel granted the writeback cache (false before INIT). */
static napi_value js_writeback_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = session_arg(env, argv[0]);
  napi_get_boolean(env, s && s->writeback, &result);
  return result;
}

/** setCallerBuffer(session, caller: Uint32Array(4)): where each request's uid, gid, pid and umask go before its handler runs. */
static napi_value js_set_caller_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  if (!s || s->caller) return NULL;
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint32_array || len < 4) {
    napi_throw_type_error(env, NULL, "setCallerBuffer: needs a Uint32Array of 4");
    return NULL;
  }
  NAPI_OK(napi_create_reference(env, argv[1], 1, &s->caller_ref));
  s->caller = data;
  return NULL;
}

/** setWriteSlabs(session, slabs: Buffer[], busy: Uint8Array): lends equal-sized write slabs. */
static napi_value js_set_write_slabs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  if (!s || s->slab_count) return NULL;
  uint32_t n = 0;
  NAPI_OK(napi_get_array_length(env, argv[1], &n));
  napi_typedarray_type type;
  size_t busy_len;
  void *busy;
  NAPI_OK(napi_get_typedarray_info(env, argv[2], &type, &busy_len, &busy, NULL, NULL));
  if (type != napi_uint8_array || busy_len < n || n == 0) {
    napi_throw_type_error(env, NULL, "setWriteSlabs: needs slabs and a Uint8Array as long");
    return NULL;
  }
  char **ptrs = calloc(n, sizeof *ptrs);
  size_t len = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value b;
    void *data;
    size_t blen;
    napi_get_element(env, argv[1], i, &b);
    if (napi_get_buffer_info(env, b, &data, &blen) != napi_ok || (i > 0 && blen != len)) {
      free(ptrs);
      napi_throw_type_error(env, NULL, "setWriteSlabs: slabs must be Buffers of one size");
      return NULL;
    }
    len = blen;
    ptrs[i] = data;
  }
  // The references keep the slabs (and the flags) alive as long as the session.
  napi_value keep;
  napi_create_array_with_length(env, 2, &keep);
  napi_set_element(env, keep, 0, argv[1]);
  napi_set_element(env, keep, 1, argv[2]);
  napi_create_reference(env, keep, 1, &s->slabs_ref);
  s->slab_ptr = ptrs;
  s->slab_busy = busy;
  s->slab_len = len;
  s->slab_count = n;
  return NULL;
}

/** invalInode(session, ino): queues an invalidation of the inode's attributes and pages. */
static napi_value js_inval_inode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  double ino = 0;
  napi_get_value_double(env, argv[1], &ino);
  if (!s || s->closed || ino < 1) return NULL;
  int err = notify_enqueue(s, (fuse_ino_t)ino, NULL, 0);
  if (err) throw_errno(env, "invalInode", err);
  return NULL;
}

/** invalEntry(session, parent, name): queues an invalidation of name in directory parent. */
static napi_value js_inval_entry(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  double parent = 0;
  napi_get_value_double(env, argv[1], &parent);
  char name[NAME_BUF];
  size_t len = 0;
  NAPI_OK(napi_get_value_string_utf8(env, argv[2], name, sizeof name, &len));
  if (!s || s->closed || parent < 1 || len == 0) return NULL;
  int err = notify_enqueue(s, (fuse_ino_t)parent, name, len);
  if (err) throw_errno(env, "invalEntry", err);
  return NULL;
}

/** stopNotify(session): stops the notify thread (dropping what is queued); true once it is out. */
static napi_value js_stop_notify(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  int done = !s || s->freed || notify_stop(s);
  napi_get_boolean(env, done, &result);
  return result;
}

/** notifyStats(session): [sent, not cached (ENOENT), failed, dropped, queued]. */
static napi_value js_notify_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = session_arg(env, argv[0]);
  double v[5] = { 0, 0, 0, 0, 0 };
  if (s && !s->freed) {
    pthread_mutex_lock(&s->notify_mu);
    v[0] = s->notify_sent; v[1] = s->notify_enoent; v[2] = s->notify_failed; v[3] = s->notify_dropped; v[4] = (double)s->notify_len;
    pthread_mutex_unlock(&s->notify_mu);
  }
  napi_create_array_with_length(env, 5, &arr);
  for (uint32_t i = 0; i < 5; i++) napi_set_element(env, arr, i, num(env, v[i]));
  return arr;
}

static fuse_req_t req_arg(napi_env env, napi_value v) {
  uint64_t p = 0;
  bool lossless;
  napi_get_value_bigint_uint64(env, v, &p, &lossless);
  return (fuse_req_t)(uintptr_t)p;
}

/** Marks a request answered; returns its session for maybe_free() after the reply. */
static session_t *answered(fuse_req_t req) {
  session_t *s = sess(req);
  s->outstanding--;
  return s;
}

#define REPLY_ARGS(N) \
  size_t argc = N; napi_value argv[N]; \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < N) { \
    napi_throw_type_error(env, NULL, "missing arguments"); return NULL; } \
  fuse_req_t req = req_arg(env, argv[0]); session_t *s = answered(req);

#define REPLY_DONE maybe_free(s); return NULL;

static double dbl(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/** Attribute layout shared with lowlevel-bridge.ts (ATTR_* there). */
/** A_INO is the kernel's nodeid; st_ino is the file's own number, A_STINO_HI << 32 | A_STINO_LO (the gfid's, 64 bits). */
enum { A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS, A_BLKSIZE, A_ATIME, A_MTIME, A_CTIME, A_ATTR_TIMEOUT, A_ENTRY_TIMEOUT, A_STINO_HI, A_STINO_LO, A_LEN };

static ino_t stino_of(const double *a) {
  uint64_t ino = ((uint64_t)a[A_STINO_HI] << 32) | (uint64_t)a[A_STINO_LO];
  return ino ? (ino_t)ino : (ino_t)a[A_INO];
}

static void ts_of(double ms, struct timespec *ts) {
  double sec = floor(ms / 1000.0);
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)((ms - sec * 1000.0) * 1e6);
  if (ts->tv_nsec < 0) ts->tv_nsec = 0;
  if (ts->tv_nsec > 999999999) ts->tv_nsec = 999999999;
}

static const double *attr_arg(napi_env env, napi_value v) {
  napi_typedarray_type t;
  size_t len;
  void *data = NULL;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < A_LEN) return NULL;
  return (const double *)data;
}

static void stat_of(const double *a, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = stino_of(a);
  st->st_mode = (mode_t)a[A_MODE];
  st->st_nlink = (nlink_t)a[A_NLINK];
  st->st_uid = (uid_t)a[A_UID];
  st->st_gid = (gid_t)a[A_GID];
  st->st_rdev = (dev_t)a[A_RDEV];
  st->st_size = (off_t)a[A_SIZE];
  st->st_blocks = (blkcnt_t)a[A_BLOCKS];
  st->st_blksize = (blksize_t)a[A_BLKSIZE];
  ts_of(a[A_ATIME], &st->st_atim);
  ts_of(a[A_MTIME], &st->st_mtim);
  ts_of(a[A_CTIME], &st->st_ctim);
}

/** An entry (lookup answer, readdirplus entry) from an attribute block. */
static void entry_from(const double *a, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->ino = (fuse_ino_t)a[A_INO];
  stat_of(a, &e->attr);
  e->attr_timeout = a[A_ATTR_TIMEOUT];
  e->entry_timeout = a[A_ENTRY_TIMEOUT];
}

static int entry_of(napi_env env, napi_value v, struct fuse_entry_param *e) {
  const double *a = attr_arg(env, v);
  if (!a) {
    memset(e, 0, sizeof *e);
    return -1;
  }
  entry_from(a, e);
  return 0;
}

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2) fuse_reply_err(req, (int)dbl(env, argv[1])); REPLY_DONE
}

static napi_value js_reply_none(napi_env env, napi_callback_info info) {
  REPLY_ARGS(1) fuse_reply_none(req); REPLY_DONE
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  struct fuse_entry_param e;
  if (entry_of(env, argv[1], &e) != 0) fuse_reply_err(req, EIO);
  else fuse_reply_entry(req, &e);
  REPLY_DONE
}

/**
 * replyCreate(req, attrs, fh, direct) and replyOpen(req, fh, direct): direct is 1 for an open
 * the page cache must not serve (FOPEN_DIRECT_IO): with the writeback cache, a file its writer
 * may not read, whose partial pages the kernel could not read to complete.
 */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REPLY_ARGS(4)
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)dbl(env, argv[2]);
  fi.direct_io = dbl(env, argv[3]) != 0;
  if (entry_of(env, argv[1], &e) != 0) fuse_reply_err(req, EIO);
  else fuse_reply_create(req, &e, &fi);
  REPLY_DONE
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  const double *a = attr_arg(env, argv[1]);
  struct stat st;
  if (!a) fuse_reply_err(req, EIO);
  else { stat_of(a, &st); fuse_reply_attr(req, &st, a[A_ATTR_TIMEOUT]); }
  REPLY_DONE
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)dbl(env, argv[1]);
  fi.direct_io = dbl(env, argv[2]) != 0;
  fuse_reply_open(req, &fi);
  REPLY_DONE
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2) fuse_reply_write(req, (size_t)dbl(env, argv[1])); REPLY_DONE
}

static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[1], &data, &len);
  fuse_reply_buf(req, data, len);
  REPLY_DONE
}

static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2) fuse_reply_xattr(req, (size_t)dbl(env, argv[1])); REPLY_DONE
}

static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  // A symlink holds up to PATH_MAX - 1 bytes; one byte more than that tells a longer one.
  char target[PATH_MAX + 1];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[1], target, sizeof target, &len) != napi_ok || len >= PATH_MAX) fuse_reply_err(req, ENAMETOOLONG);
  else fuse_reply_readlink(req, target);
  REPLY_DONE
}

/** replyStatfs(req, Float64Array [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  napi_typedarray_type t;
  size_t len;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[1], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 9) {
    fuse_reply_err(req, EIO);
  } else {
    const double *a = data;
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    sv.f_bsize = (unsigned long)a[0]; sv.f_frsize = (unsigned long)a[1];
    sv.f_blocks = (fsblkcnt_t)a[2]; sv.f_bfree = (fsblkcnt_t)a[3]; sv.f_bavail = (fsblkcnt_t)a[4];
    sv.f_files = (fsfilcnt_t)a[5]; sv.f_ffree = (fsfilcnt_t)a[6]; sv.f_favail = (fsfilcnt_t)a[7];
    sv.f_namemax = (unsigned long)a[8];
    fuse_reply_statfs(req, &sv);
  }
  REPLY_DONE
}

/**
 * Fills a readdir (plus = 0) or readdirplus (plus = 1) answer with the entries from index off
 * of names that fit in size bytes; attrs holds an attribute block (A_LEN doubles, as
 * replyEntry's) per entry, and entry i's offset is i + 1. Returns the index after the last
 * entry sent.
 */
static uint32_t reply_listing(napi_env env, fuse_req_t req, napi_value *argv, int plus) {
  size_t size = (size_t)dbl(env, argv[1]);
  uint32_t off = (uint32_t)dbl(env, argv[2]), count = 0, i;
  napi_get_array_length(env, argv[3], &count);
  napi_typedarray_type t;
  size_t tlen = 0;
  void *data = NULL;
  napi_get_typedarray_info(env, argv[4], &t, &tlen, &data, NULL, NULL);
  const double *attrs = data;
  char *buf = malloc(size ? size : 1);
  size_t used = 0;
  char name[NAME_BUF];
  for (i = off; i < count && (size_t)(i + 1) * A_LEN <= tlen; i++) {
    napi_value v;
    size_t nlen;
    napi_get_element(env, argv[3], i, &v);
    if (napi_get_value_string_utf8(env, v, name, sizeof name, &nlen) != napi_ok) continue;
    const double *a = attrs + (size_t)i * A_LEN;
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      entry_from(a, &e);
      need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
      if (used + need > size) break;
      fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
    } else {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = stino_of(a);
      st.st_mode = (mode_t)a[A_MODE];
      need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
      if (used + need > size) break;
      fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
    }
    used += need;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
  return i;
}

/** replyDir(req, size, off, names, attrs): a readdir answer (reply_listing). */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  REPLY_ARGS(5) reply_listing(env, req, argv, 0); REPLY_DONE
}

/**
 * replyDirPlus(req, size, off, names, attrs) -> next: a readdirplus answer (reply_listing).
 * The kernel now holds a lookup reference on every entry sent but "." and "..".
 */
static napi_value js_reply_dir_plus(napi_env env, napi_callback_info info) {
  REPLY_ARGS(5)
  napi_value next = num(env, reply_listing(env, req, argv, 1));
  maybe_free(s);
  return next;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL },
    { "unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL },
    { "setWriteSlabs", NULL, js_set_write_slabs, NULL, NULL, NULL, napi_default, NULL },
    { "setCallerBuffer", NULL, js_set_caller_buffer, NULL, NULL, NULL, napi_default, NULL },
    { "initialized", NULL, js_initialized, NULL, NULL, NULL, napi_default, NULL },
    { "setWritebackCache", NULL, js_set_writeback_cache, NULL, NULL, NULL, napi_default, NULL },
    { "writebackCache", NULL, js_writeback_cache, NULL, NULL, NULL, napi_default, NULL },
    { "invalInode", NULL, js_inval_inode, NULL, NULL, NULL, napi_default, NULL },
    { "invalEntry", NULL, js_inval_entry, NULL, NULL, NULL, napi_default, NULL },
    { "stopNotify", NULL, js_stop_notify, NULL, NULL, NULL, napi_default, NULL },
    { "notifyStats", NULL, js_notify_stats, NULL, NULL, NULL, napi_default, NULL },
    { "replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL },
    { "replyNone", NULL, js_reply_none, NULL, NULL, NULL, napi_default, NULL },
    { "replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL },
    { "replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL },
    { "replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL },
    { "replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL },
    { "replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL },
    { "replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL },
    { "replyXattrSize", NULL, js_reply_xattr_size, NULL, NULL, NULL, napi_default, NULL },
    { "replyReadlink", NULL, js_reply_readlink, NULL, NULL, NULL, napi_default, NULL },
    { "replyStatfs", NULL, js_reply_statfs, NULL, NULL, NULL, napi_default, NULL },
    { "replyDir", NULL, js_reply_dir, NULL, NULL, NULL, napi_default, NULL },
    { "replyDirPlus", NULL, js_reply_dir_plus, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
