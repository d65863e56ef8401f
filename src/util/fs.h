/* fs.h - paths, whole-file reads with a cap, and atomic file publication. */
#ifndef AD_FS_H
#define AD_FS_H

#include <stddef.h>

#include "util/err.h"

/* Read a whole file into a malloc'd NUL-terminated buffer (caller frees; *out is NULL
 * on failure). Returns 0, AD_EIO (errno kept), or AD_ETOOBIG past limit bytes. */
AD_WUR int fs_read_all(const char *path, size_t limit, char **out, size_t *len);
/* Write data to path atomically: path.tmp, fsync, rename. Returns 0, AD_EFULL (disk
 * full) or AD_EIO (errno kept). */
AD_WUR int fs_write_atomic(const char *path, const void *data, size_t len);
/* mkdir -p. 0, AD_EINVAL (empty or too long) or AD_EIO (errno kept). */
AD_WUR int fs_mkdirs(const char *path);

/* dir "/" name as a new owned string (no doubled '/' when dir ends with one; name
 * alone when dir is NULL or ""). */
char *fs_join(const char *dir, const char *name);
/* The same into out[cap]: 0, or AD_ETOOBIG when it does not fit (out is then ""). */
AD_WUR int fs_join_buf(char *out, size_t cap, const char *dir, const char *name);
/* The last component of path (borrowed: a pointer into path); NULL for NULL. */
const char *fs_basename(const char *path);
/* The folder part of path as a new owned string: "." for a bare name, "/" for a
 * file at the root. */
char *fs_dirname(const char *path);

#endif
