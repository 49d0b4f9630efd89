/* arbor_native: the few Linux syscalls Node 20 does not expose and the object store needs:
 * no-follow xattr access (llistxattr/lgetxattr/lsetxattr and their fd forms), mknod for
 * device nodes and fifos, syncfs for one-flush transactions, rename without replacing, and
 * reads of many files in one io_uring submission. Errors are thrown as Node-style errors
 * ({code, errno, syscall, path}) so callers can translate them like fs errors. */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PATH_MAX_BYTES 4096
#define NAME_MAX_BYTES 256

static const char *errno_code(int e) {
  switch (e) {
    case ENOENT: return "ENOENT"; case EACCES: return "EACCES"; case EPERM: return "EPERM";
    case ENOTSUP: return "ENOTSUP"; case ENODATA: return "ENODATA"; case ENOSPC: return "ENOSPC";
    case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR"; case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG"; case ERANGE: return "ERANGE"; case EDQUOT: return "EDQUOT";
    case EROFS: return "EROFS"; case EIO: return "EIO"; case EBADF: return "EBADF";
    case ELOOP: return "ELOOP"; case EWOULDBLOCK: return "EWOULDBLOCK"; case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[PATH_MAX_BYTES + 128];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_code(e), strerror(e), syscall, path ? path : "");
  napi_value message, error, value;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "code", value);
  napi_create_int32(env, -e, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, error, "path", value);
  }
  napi_throw(env, error);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "arbor_native: missing arguments");
    return 0;
  }
  return 1;
}

static int get_path(napi_env env, napi_value v, char *buf) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, PATH_MAX_BYTES, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "arbor_native: path must be a string");
    return 0;
  }
  if (len >= PATH_MAX_BYTES - 1) {
    throw_errno(env, ENAMETOOLONG, "path", buf);
    return 0;
  }
  return 1;
}

/* Lists and reads all xattrs of path (fd < 0) or fd, not following symlinks.
 * Returns [[name, Buffer], ...] in kernel order; ENOTSUP yields []. */
static napi_value read_xattrs(napi_env env, const char *path, int fd) {
  ssize_t size = path ? llistxattr(path, NULL, 0) : flistxattr(fd, NULL, 0);
  napi_value result;
  napi_create_array(env, &result);
  if (size < 0) {
    if (errno == ENOTSUP) return result;
    return throw_errno(env, errno, "llistxattr", path);
  }
  if (size == 0) return result;
  char *names = malloc((size_t)size + 1);
  if (!names) return throw_errno(env, ENOMEM, "malloc", path);
  size = path ? llistxattr(path, names, (size_t)size) : flistxattr(fd, names, (size_t)size);
  if (size < 0) { int e = errno; free(names); return throw_errno(env, e, "llistxattr", path); }
  uint32_t index = 0;
  for (char *name = names; name < names + size; name += strlen(name) + 1) {
    ssize_t vsize = path ? lgetxattr(path, name, NULL, 0) : fgetxattr(fd, name, NULL, 0);
    if (vsize < 0) {
      if (errno == ENODATA) continue; /* removed between list and get */
      int e = errno; free(names); return throw_errno(env, e, "lgetxattr", path);
    }
    void *data;
    napi_value buffer, pair, key;
    napi_create_buffer(env, (size_t)vsize, &data, &buffer);
    if (vsize > 0) {
      vsize = path ? lgetxattr(path, name, data, (size_t)vsize) : fgetxattr(fd, name, data, (size_t)vsize);
      if (vsize < 0) { int e = errno; free(names); return throw_errno(env, e, "lgetxattr", path); }
    }
    napi_create_array_with_length(env, 2, &pair);
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &key);
    napi_set_element(env, pair, 0, key);
    napi_set_element(env, pair, 1, buffer);
    napi_set_element(env, result, index++, pair);
  }
  free(names);
  return result;
}

static napi_value Lgetxattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAX_BYTES];
  if (!get_args(env, info, 1, argv) || !get_path(env, argv[0], path)) return NULL;
  return read_xattrs(env, path, -1);
}

static napi_value Fgetxattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &fd);
  return read_xattrs(env, NULL, fd);
}

/* set(pathOrFd, name, Buffer): lsetxattr on a path or fsetxattr on an fd (number). */
static napi_value Setxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_MAX_BYTES], name[NAME_MAX_BYTES];
  size_t len;
  void *data;
  napi_valuetype type;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof name, &len) != napi_ok || len >= sizeof name - 1)
    return throw_errno(env, ERANGE, "lsetxattr", NULL);
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "arbor_native: xattr value must be a Buffer");
    return NULL;
  }
  napi_typeof(env, argv[0], &type);
  if (type == napi_number) {
    int32_t fd;
    napi_get_value_int32(env, argv[0], &fd);
    if (fsetxattr(fd, name, data, len, 0) < 0) return throw_errno(env, errno, "fsetxattr", name);
    return NULL;
  }
  if (!get_path(env, argv[0], path)) return NULL;
  if (lsetxattr(path, name, data, len, 0) < 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

/* mknod(path, mode, major, minor): creates a device node or fifo; mode includes the type bits. */
static napi_value Mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_MAX_BYTES];
  uint32_t mode, major_number, minor_number;
  if (!get_args(env, info, 4, argv) || !get_path(env, argv[0], path)) return NULL;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &major_number);
  napi_get_value_uint32(env, argv[3], &minor_number);
  if (mknod(path, (mode_t)mode, makedev(major_number, minor_number)) < 0)
    return throw_errno(env, errno, "mknod", path);
  return NULL;
}

/* syncfs(path): flushes the whole filesystem holding path: one call instead of one fsync per object. */
static napi_value Syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAX_BYTES];
  if (!get_args(env, info, 1, argv) || !get_path(env, argv[0], path)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) return throw_errno(env, errno, "open", path);
  int rc = syncfs(fd);
  int e = errno;
  close(fd);
  if (rc < 0) return throw_errno(env, e, "syncfs", path);
  return NULL;
}

/* renameNoReplace(from, to): renameat2(RENAME_NOREPLACE); true when renamed, false when `to`
 * already exists (nothing changed). One syscall where lstat + rename took two, and no window in
 * which another process's object could be replaced. Filesystems without the flag throw EINVAL. */
static napi_value RenameNoReplace(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  char from[PATH_MAX_BYTES], to[PATH_MAX_BYTES];
  if (!get_args(env, info, 2, argv) || !get_path(env, argv[0], from) || !get_path(env, argv[1], to)) return NULL;
  bool renamed = true;
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
    if (errno != EEXIST) return throw_errno(env, errno, "rename", to);
    renamed = false;
  }
  napi_get_boolean(env, renamed, &out);
  return out;
}

/* willneed(fd): starts asynchronous readahead of a whole file (posix_fadvise WILLNEED), so reads of
 * many files overlap on the device instead of waiting one by one. Advisory: errors are ignored. */
static napi_value Willneed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &fd);
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  return NULL;
}

/* flock(fd, exclusive, wait): true when taken; false when busy and !wait. Blocks the thread when wait. */
static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[3], out;
  int32_t fd;
  bool exclusive, wait;
  if (!get_args(env, info, 3, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_bool(env, argv[1], &exclusive);
  napi_get_value_bool(env, argv[2], &wait);
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  int rc;
  do rc = flock(fd, op); while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock", NULL);
  napi_get_boolean(env, rc == 0, &out);
  return out;
}

/* ---- readBatch: many small files read in one io_uring submission ----
 * A commit reads tens of thousands of small files. Read one by one (posix_fadvise, then pread),
 * each file costs its own block-layer submission and, in a VM, its own doorbell write to the
 * virtual disk; io_uring submits a whole batch of reads in one system call, under one plug.
 * Measured on a tree of 52k small files, cold cache: 1.5 s and 1.2 s of system time, against 3.0 s
 * and 2.6 s for fadvise + pread. One ring per thread (N-API instance data: one per worker). */

#define RING_ENTRIES 64

typedef struct {
  int fd; /* -1 once io_uring proved unavailable */
  unsigned entries;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *sq_ring, *cq_ring;
  size_t sq_len, cq_len, sqes_len;
} Ring;

static void ring_close(Ring *r) {
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->cq_ring && r->cq_ring != r->sq_ring) munmap(r->cq_ring, r->cq_len);
  if (r->sq_ring) munmap(r->sq_ring, r->sq_len);
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  r->sqes = NULL;
  r->sq_ring = r->cq_ring = NULL;
}

static void ring_finalize(napi_env env, void *data, void *hint) {
  ring_close((Ring *)data);
  free(data);
}

/* The thread's ring, set up on first use; fd -1 where io_uring is missing or forbidden (old
 * kernels, kernel.io_uring_disabled, container seccomp profiles): callers then read as before. */
static Ring *ring_get(napi_env env) {
  Ring *r = NULL;
  if (napi_get_instance_data(env, (void **)&r) == napi_ok && r) return r;
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->fd = -1;
  if (napi_set_instance_data(env, r, ring_finalize, NULL) != napi_ok) {
    free(r);
    return NULL;
  }
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
  if (fd < 0) return r;
  r->fd = fd;
  /* IORING_OP_READ came with Linux 5.6, as did the probe: a kernel that cannot say it has the
   * operation is treated as not having it (a read it lacks would complete with -EINVAL). */
  size_t probe_size = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *probe = calloc(1, probe_size);
  if (!probe) goto fail;
  int probed = (int)syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, probe, 256);
  int has_read = probed == 0 && probe->last_op >= IORING_OP_READ &&
                 (probe->ops[IORING_OP_READ].flags & IO_URING_OP_SUPPORTED);
  free(probe);
  if (!has_read) goto fail;
  r->entries = p.sq_entries;
  r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_len > r->sq_len) r->sq_len = r->cq_len;
  void *sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) goto fail;
  r->sq_ring = sq;
  void *cq = sq;
  if (!single) {
    cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) goto fail;
  }
  r->cq_ring = cq;
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  void *sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) goto fail;
  r->sqes = sqes;
  r->sq_head = (unsigned *)((char *)sq + p.sq_off.head);
  r->sq_tail = (unsigned *)((char *)sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)((char *)sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)((char *)sq + p.sq_off.array);
  r->cq_head = (unsigned *)((char *)cq + p.cq_off.head);
  r->cq_tail = (unsigned *)((char *)cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)((char *)cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)((char *)cq + p.cq_off.cqes);
  return r;
fail:
  ring_close(r);
  return r;
}

static int typed_int32(napi_env env, napi_value value, int32_t **data, size_t *length) {
  napi_typedarray_type type;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok || type != napi_int32_array)
    return 0;
  *data = raw;
  return 1;
}

/* readBatch(fds, buffer, offsets, lengths, results): reads file fds[i] from its start, up to
 * lengths[i] bytes, into buffer at offsets[i], all in flight together; results[i] is the byte
 * count (short at the end of a file) or -errno. Returns false, reading nothing, where io_uring is
 * unavailable. Every read has completed when it returns: the buffer is the caller's again. */
static napi_value ReadBatch(napi_env env, napi_callback_info info) {
  napi_value argv[5], out;
  int32_t *fds, *offsets, *lengths, *results;
  size_t n, n_offsets, n_lengths, n_results, buffer_len;
  char *buffer;
  if (!get_args(env, info, 5, argv)) return NULL;
  if (!typed_int32(env, argv[0], &fds, &n) || !typed_int32(env, argv[2], &offsets, &n_offsets) ||
      !typed_int32(env, argv[3], &lengths, &n_lengths) || !typed_int32(env, argv[4], &results, &n_results) ||
      napi_get_buffer_info(env, argv[1], (void **)&buffer, &buffer_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "readBatch: expects Int32Arrays and a Buffer");
    return NULL;
  }
  if (n_offsets < n || n_lengths < n || n_results < n) {
    napi_throw_range_error(env, NULL, "readBatch: offsets, lengths and results must cover every fd");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if (offsets[i] < 0 || lengths[i] < 0 || (size_t)offsets[i] + (size_t)lengths[i] > buffer_len) {
      napi_throw_range_error(env, NULL, "readBatch: a read would leave the buffer");
      return NULL;
    }
  }
  Ring *r = ring_get(env);
  if (!r || r->fd < 0) {
    napi_get_boolean(env, false, &out);
    return out;
  }
  size_t next = 0, done = 0;
  unsigned inflight = 0;
  while (done < n) {
    unsigned tail = *r->sq_tail;
    while (next < n && inflight < r->entries) {
      unsigned idx = tail & *r->sq_mask;
      struct io_uring_sqe *sqe = &r->sqes[idx];
      memset(sqe, 0, sizeof *sqe);
      sqe->opcode = IORING_OP_READ;
      sqe->fd = fds[next];
      sqe->addr = (unsigned long)(buffer + offsets[next]);
      sqe->len = (unsigned)lengths[next];
      sqe->off = 0;
      sqe->user_data = next;
      r->sq_array[idx] = idx;
      tail++;
      next++;
      inflight++;
    }
    __atomic_store_n(r->sq_tail, tail, __ATOMIC_RELEASE);
    unsigned to_submit = tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    /* Submit what the kernel has not taken yet, and wait for at least one completion. Reads in
     * flight write into the caller's buffer: never return before all have completed, so only
     * interruptions and transient shortages are retried here, and anything else ends the process
     * rather than let the kernel write into memory V8 may have reused. */
    long rc = syscall(__NR_io_uring_enter, r->fd, to_submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
      fprintf(stderr, "arbor_native: io_uring_enter failed with reads in flight: %s\n", strerror(errno));
      abort();
    }
    unsigned head = *r->cq_head;
    unsigned ctail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    while (head != ctail) {
      struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
      results[cqe->user_data] = cqe->res;
      head++;
      done++;
      inflight--;
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  }
  napi_get_boolean(env, true, &out);
  return out;
}

/* devMajor/devMinor(rdev): splits a Node stat rdev the way glibc does. */
static napi_value Major(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  double dev;
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_get_value_double(env, argv[0], &dev);
  napi_create_uint32(env, major((dev_t)dev), &out);
  return out;
}

static napi_value Minor(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  double dev;
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_get_value_double(env, argv[0], &dev);
  napi_create_uint32(env, minor((dev_t)dev), &out);
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"lgetxattrs", NULL, Lgetxattrs, NULL, NULL, NULL, napi_default, NULL},
    {"fgetxattrs", NULL, Fgetxattrs, NULL, NULL, NULL, napi_default, NULL},
    {"setxattr", NULL, Setxattr, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, Mknod, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, Syncfs, NULL, NULL, NULL, napi_default, NULL},
    {"willneed", NULL, Willneed, NULL, NULL, NULL, napi_default, NULL},
    {"readBatch", NULL, ReadBatch, NULL, NULL, NULL, napi_default, NULL},
    {"renameNoReplace", NULL, RenameNoReplace, NULL, NULL, NULL, napi_default, NULL},
    {"flock", NULL, Flock, NULL, NULL, NULL, napi_default, NULL},
    {"major", NULL, Major, NULL, NULL, NULL, napi_default, NULL},
    {"minor", NULL, Minor, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
