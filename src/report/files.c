/* files.c - what the report module's writers share: error messages, run lookup and
 * output files published atomically (report.h, "shared helpers"). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

int report_err(char *err, size_t n, int code, const char *fmt, ...) {
  if (err && n) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
  }
  return code;
}

int report_join(char *out, size_t cap, const char *dir, const char *name, char *err, size_t n) {
  if (fs_join_buf(out, cap, dir, name))
    return report_err(err, n, AD_ETOOBIG, "output path too long: %s/%s", dir, name);
  return 0;
}

struct run_pick {
  store_id want;
  json_t *row;
};

static int pick_run(void *ud, const json_t *row) {
  struct run_pick *p = ud;
  if (p->want > 0 && jx_int(row, "id", 0) != p->want) return 0;
  json_decref(p->row);
  p->row = json_deep_copy(row); /* run 0: rows come by id, the last one is the latest */
  return p->want > 0 ? 1 : 0;
}

int report_run_row(store *st, store_id run, json_t **row, char *err, size_t n) {
  struct run_pick p = {run, NULL};
  *row = NULL;
  int rc = store_runs_each(st, pick_run, &p);
  if (rc < 0) {
    json_decref(p.row);
    return report_err(err, n, rc, "%s", store_errmsg(st));
  }
  if (!p.row) {
    if (run > 0)
      return report_err(err, n, AD_ENOTFOUND,
                        "store %s has no run %lld (see `autodata status --store %s`)",
                        store_path(st), (long long)run, store_path(st));
    return report_err(err, n, AD_ENOTFOUND,
                      "store %s holds no run yet: start one with `autodata run`", store_path(st));
  }
  *row = p.row;
  return 0;
}

const json_t *report_run_meta(const json_t *run_row) {
  const json_t *info = json_object_get(run_row, "info");
  if (!json_is_object(info)) return NULL;
  if (json_object_get(info, "recipe") || json_object_get(info, "prompts")) return info;
  const json_t *extra = json_object_get(info, "extra");
  if (json_is_object(extra)) return extra;
  return info;
}

int report_file_open(struct report_file *rf, const char *path, char *err, size_t n) {
  memset(rf, 0, sizeof *rf);
  rf->path = xstrdup(path);
  /* the pid keeps apart processes writing the same file at once (workers of one run sharing
   * an output folder write the same bytes; docs/store.md) */
  rf->tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
  rf->f = fopen(rf->tmp, "we");
  if (!rf->f) {
    int e = errno;
    report_err(err, n, AD_EIO, "cannot write %s: %s (check that its folder exists and is writable)",
               rf->tmp, strerror(e));
    free(rf->path);
    free(rf->tmp);
    memset(rf, 0, sizeof *rf);
    return AD_EIO;
  }
  return 0;
}

static int io_fail(struct report_file *rf, int e, char *err, size_t n) {
  int code = e == ENOSPC ? AD_EFULL : AD_EIO;
  report_err(err, n, code, "writing %s failed: %s%s", rf->path ? rf->path : "?", strerror(e),
             e == ENOSPC ? " (free some disk space and run the command again)" : "");
  report_file_abort(rf);
  return code;
}

int report_file_write(struct report_file *rf, const void *p, size_t len, char *err, size_t n) {
  if (!rf->f) return report_err(err, n, AD_EINVAL, "output file is not open");
  if (len && fwrite(p, 1, len, rf->f) != len) return io_fail(rf, errno ? errno : EIO, err, n);
  return 0;
}

int report_file_commit(struct report_file *rf, char *err, size_t n) {
  if (!rf->f) return report_err(err, n, AD_EINVAL, "output file is not open");
  if (fflush(rf->f) || fsync(fileno(rf->f))) return io_fail(rf, errno ? errno : EIO, err, n);
  FILE *f = rf->f;
  rf->f = NULL;
  if (fclose(f)) return io_fail(rf, errno ? errno : EIO, err, n);
  if (rename(rf->tmp, rf->path)) return io_fail(rf, errno, err, n);
  free(rf->path);
  free(rf->tmp);
  memset(rf, 0, sizeof *rf);
  return 0;
}

void report_file_abort(struct report_file *rf) {
  if (rf->f) fclose(rf->f);
  if (rf->tmp) unlink(rf->tmp);
  free(rf->path);
  free(rf->tmp);
  memset(rf, 0, sizeof *rf);
}
