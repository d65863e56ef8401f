/* fs.c - file helpers. */
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"

int fs_read_all(const char *path, size_t limit, char **out, size_t *len) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return AD_EIO;
  struct stat sb;
  if (!fstat(fileno(f), &sb) && S_ISDIR(sb.st_mode)) { /* fopen opens a folder for reading */
    fclose(f);
    errno = EISDIR;
    return AD_EIO;
  }
  size_t cap = 4096, n = 0;
  char *p = xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > limit + 1) {
        free(p);
        fclose(f);
        return AD_ETOOBIG;
      }
      p = xrealloc(p, cap * 2);
      cap *= 2;
    }
    size_t got = fread(p + n, 1, cap - n - 1, f);
    n += got;
    if (n > limit) {
      free(p);
      fclose(f);
      return AD_ETOOBIG;
    }
    if (got == 0) break;
  }
  int err = ferror(f), saved = errno; /* fread's own errno, not a guess */
  fclose(f);
  if (err) {
    free(p);
    errno = saved ? saved : EIO;
    return AD_EIO;
  }
  p[n] = '\0';
  *out = p;
  if (len) *len = n;
  return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len) {
  char *tmp = xasprintf("%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(tmp);
    return AD_EIO;
  }
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      free(tmp);
      errno = e;
      return e == ENOSPC ? AD_EFULL : AD_EIO;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) || close(fd)) {
    unlink(tmp);
    free(tmp);
    return AD_EIO;
  }
  int rc = rename(tmp, path) ? AD_EIO : 0;
  free(tmp);
  return rc;
}

int fs_mkdirs(const char *path) {
  char tmp[4096];
  size_t n = strlen(path);
  /* errno always says why on failure: callers print strerror(errno). */
  if (n == 0 || n >= sizeof tmp) {
    errno = n ? ENAMETOOLONG : ENOENT;
    return AD_EINVAL;
  }
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) && errno != EEXIST) return AD_EIO;
    *p = '/';
  }
  if (mkdir(tmp, 0755) && errno != EEXIST) return AD_EIO;
  struct stat sb;
  if (stat(tmp, &sb)) return AD_EIO;
  if (!S_ISDIR(sb.st_mode)) { /* EEXIST from a file of that name */
    errno = ENOTDIR;
    return AD_EIO;
  }
  return 0;
}

static const char *join_sep(const char *dir) {
  size_t n = dir ? strlen(dir) : 0;
  return n == 0 || dir[n - 1] == '/' ? "" : "/";
}

char *fs_join(const char *dir, const char *name) {
  return xasprintf("%s%s%s", dir ? dir : "", join_sep(dir), name);
}

int fs_join_buf(char *out, size_t cap, const char *dir, const char *name) {
  int w = snprintf(out, cap, "%s%s%s", dir ? dir : "", join_sep(dir), name);
  if (w < 0 || (size_t)w >= cap) {
    if (cap) out[0] = '\0';
    return AD_ETOOBIG;
  }
  return 0;
}

char *fs_dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return xstrdup(".");
  if (slash == path) return xstrdup("/");
  return xstrndup(path, (size_t)(slash - path));
}

const char *fs_basename(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}
