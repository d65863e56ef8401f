/* helpers.c - shared helpers for the unit tests; see helpers.h. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define TH_TMP_PREFIX "/tmp/ad_"

void th_mkdtemp(char *dir, size_t n, const char *tag) {
  int w = snprintf(dir, n, TH_TMP_PREFIX "%s.XXXXXX", tag);
  cr_assert(w > 0 && (size_t)w < n, "temp dir name too long for its buffer (%s)", tag);
  cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int th_rmtree(const char *dir) {
  if (strncmp(dir, TH_TMP_PREFIX, strlen(TH_TMP_PREFIX)) || strstr(dir, "/..")) return -1;
  return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

char *th_path(const char *dir, const char *name) {
  static char bufs[8][1024];
  static unsigned k;
  char *p = bufs[k++ % 8];
  int w = snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
  cr_assert(w > 0 && (size_t)w < sizeof bufs[0], "path too long: %s/%s", dir, name);
  return p;
}

const char *th_write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  size_t len = strlen(content);
  cr_assert_eq(fwrite(content, 1, len, f), len, "short write to %s", path);
  cr_assert_eq(fclose(f), 0, "cannot write %s", path);
  return path;
}

char *th_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  size_t len = 0, cap = 4096;
  char *data = malloc(cap);
  cr_assert_not_null(data);
  size_t got;
  while ((got = fread(data + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len == 1) {
      cap *= 2;
      data = realloc(data, cap);
      cr_assert_not_null(data);
    }
  }
  cr_assert(!ferror(f), "cannot read %s", path);
  fclose(f);
  data[len] = '\0';
  if (n) *n = len;
  return data;
}

void th_sim_config(struct llm_endpoint_config *cfg, const char *name) {
  llm_endpoint_config_init(cfg);
  cfg->name = name;
  cfg->base_urls[0] = "sim";
  cfg->n_urls = 1;
}

llm_client *th_sim_client(const char *name, const json_t *extra_body) {
  llm_client *c = llm_client_new();
  cr_assert_not_null(c);
  struct llm_endpoint_config cfg;
  th_sim_config(&cfg, name);
  cfg.extra_body = extra_body;
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), 0, "%s", llm_client_errmsg(c));
  return c;
}

/* Every allocation of the unit-test binary follows the program's policy (util/mem.h):
 * jansson allocates through xmalloc, as in main(). */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  mem_init();
}
