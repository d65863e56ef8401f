/* fs.h - whole-file reads with a cap, and atomic file publication. */
#ifndef AD_FS_H
#define AD_FS_H

#include <stddef.h>

#include "util/err.h"

/* Read a whole file into a malloc'd NUL-terminated buffer (caller frees).
 * Returns 0, AD_EIO (errno kept), or AD_ETOOBIG past limit bytes. */
AD_WUR int fs_read_all(const char *path, size_t limit, char **out, size_t *len);
/* Write data to path atomically: path.tmp, fsync, rename. */
AD_WUR int fs_write_atomic(const char *path, const void *data, size_t len);
/* mkdir -p. */
AD_WUR int fs_mkdirs(const char *path);

#endif
