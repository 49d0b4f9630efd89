/* arbor_native: the few Linux syscalls Node 20 does not expose and the object store needs:
 * no-follow xattr access (llistxattr/lgetxattr/lsetxattr and their fd forms), mknod for
 * device nodes and fifos, syncfs for one-flush transactions, and rename without replacing. Errors are thrown as Node-style
 * errors ({code, errno, syscall, path}) so callers can translate them like fs errors. */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    {"renameNoReplace", NULL, RenameNoReplace, NULL, NULL, NULL, napi_default, NULL},
    {"flock", NULL, Flock, NULL, NULL, NULL, napi_default, NULL},
    {"major", NULL, Major, NULL, NULL, NULL, napi_default, NULL},
    {"minor", NULL, Minor, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
