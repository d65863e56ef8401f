/* recipe.c - YAML recipe loading and validation (see recipe.h, docs/recipes.md).
 *
 * The file is parsed with libyaml's document API into a node tree whose nodes
 * carry start marks; every check then reports "file:line:column: message". The
 * loader keeps going after an error (falling back to defaults) so that one run
 * of `autodata validate` lists as many problems as possible.
 */
#include "recipe/recipe.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"

#ifndef AD_PREFIX
#define AD_PREFIX "/usr/local"
#endif

#define RECIPE_MAX_ENDPOINTS 256
#define RECIPE_MAX_PRICES 256
#define RECIPE_JSON_BUDGET 20000 /* YAML nodes converted to JSON per recipe */
#define RECIPE_JSON_DEPTH 32

/* ---- names -------------------------------------------------------------- */

static const char *const role_names[RECIPE_N_ROLES] = {
    "orchestrator", "challenger", "quality", "weak", "strong", "judge", "extractor", "loop_judge"};

const char *recipe_role_name(enum recipe_role_id r) {
  return (unsigned)r < RECIPE_N_ROLES ? role_names[r] : "?";
}

const char *recipe_default_prompt_file(enum recipe_role_id role, enum cand_task task) {
  int v = task == CAND_TASK_VERIFIABLE;
  switch (role) {
  case RECIPE_ROLE_ORCHESTRATOR: return "orchestrator.md";
  case RECIPE_ROLE_CHALLENGER: return v ? "challenger-verifiable.md" : "challenger-rubric.md";
  case RECIPE_ROLE_QUALITY: return "quality.md";
  case RECIPE_ROLE_WEAK:
  case RECIPE_ROLE_STRONG: return "solver.md";
  case RECIPE_ROLE_JUDGE: return v ? "judge-verifiable.md" : "judge-rubric.md";
  case RECIPE_ROLE_EXTRACTOR: return "extractor.md";
  case RECIPE_ROLE_LOOP_JUDGE: return "loop-judge.md";
  default: return NULL;
  }
}

/* ---- accept presets ----------------------------------------------------- */

static const char *const preset_cs_deployed[] = {
    "weak_mean <= 0.65",  "weak_max <= 0.75", "weak_min > 0", "strong_mean >= 0.60",
    "strong_mean < 0.95", "strong_min > 0",   "gap >= 0.20",  NULL};
static const char *const preset_cs_prose[] = {"strong_mean >= 0.65", "weak_mean < 0.50",
                                              "gap >= 0.20", NULL};
static const char *const preset_math_exact[] = {"weak_correct <= 1", "strong_correct >= 3", NULL};

int recipe_accept_preset(const char *name, enum cand_task task, struct accept_spec *s) {
  const char *const *list = NULL;
  if (!strcmp(name, "verifiable-majority")) {
    accept_spec_default_verifiable(s);
    return 0;
  }
  if (!strcmp(name, "cs-deployed")) list = preset_cs_deployed;
  else if (!strcmp(name, "cs-prose")) list = preset_cs_prose;
  else if (!strcmp(name, "math-exact")) list = preset_math_exact;
  else return AD_ENOTFOUND;
  if (task == CAND_TASK_VERIFIABLE) accept_spec_default_verifiable(s);
  else accept_spec_default_rubric(s);
  s->n = 0;
  for (int i = 0; list[i]; i++) {
    char e[256];
    if (accept_bound_parse(list[i], &s->bounds[s->n], e, sizeof e)) return AD_EINTERNAL;
    s->n++;
  }
  return 0;
}

/* ---- prompts folder ----------------------------------------------------- */

static int is_dir(const char *p) {
  struct stat sb;
  return !stat(p, &sb) && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
  struct stat sb;
  return !stat(p, &sb) && S_ISREG(sb.st_mode);
}

int recipe_default_prompts_dir(char *out, size_t n) {
  const char *env = getenv("AUTODATA_PROMPTS");
  if (env && *env) {
    if (!is_dir(env)) return AD_ENOTFOUND;
    snprintf(out, n, "%s", env);
    return 0;
  }
  char exe[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (l > 0) {
    exe[l] = '\0';
    char *bin = fs_dirname(exe);
    static const char *const rel[] = {"../../prompts", "../prompts"};
    int found = 0;
    for (int i = 0; i < 2 && !found; i++) {
      char *cand = fs_join(bin, rel[i]), *marker = fs_join(cand, "solver.md");
      if ((found = is_file(marker))) {
        char *real = realpath(cand, NULL);
        snprintf(out, n, "%s", real ? real : cand);
        free(real);
      }
      free(marker);
      free(cand);
    }
    free(bin);
    if (found) return 0;
  }
  const char *share = AD_PREFIX "/share/autodata/prompts";
  if (is_file(AD_PREFIX "/share/autodata/prompts/solver.md")) {
    snprintf(out, n, "%s", share);
    return 0;
  }
  return AD_ENOTFOUND;
}

/* ---- diagnostics -------------------------------------------------------- */

void recipe_diag_release(struct recipe_diag *d) {
  if (!d) return;
  for (int i = 0; i < d->n; i++) free(d->msgs[i]);
  memset(d, 0, sizeof *d);
}

struct ld {
  yaml_document_t doc;
  const char *file;
  struct recipe *r;
  struct recipe_diag *diag;
  int nerr;
  const struct recipe_load_opts *opts;
  int json_budget;
  int explicit_samples[RECIPE_N_ROLES];
  yaml_node_t *role_nodes[RECIPE_N_ROLES];
  yaml_node_t *prompt_nodes[RECIPE_N_ROLES], *sysprompt_nodes[RECIPE_N_ROLES];
  char *prompt_rel[RECIPE_N_ROLES], *sysprompt_rel[RECIPE_N_ROLES];
};

static void add_msg(struct ld *L, char *msg) {
  L->nerr++;
  if (!L->diag) {
    free(msg);
    return;
  }
  if (L->diag->n < RECIPE_MAX_ERRORS) L->diag->msgs[L->diag->n++] = msg;
  else {
    L->diag->dropped++;
    free(msg);
  }
}

static void AD_PRINTF(4, 5) err_pos(struct ld *L, int line, int col, const char *fmt, ...) {
  char body[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  if (line > 0) add_msg(L, xasprintf("%s:%d:%d: %s", L->file, line, col, body));
  else add_msg(L, xasprintf("%s: %s", L->file, body));
}

#define NLINE(n) ((int)(n)->start_mark.line + 1)
#define NCOL(n) ((int)(n)->start_mark.column + 1)
#define err_at(L, n, ...) err_pos((L), NLINE(n), NCOL(n), __VA_ARGS__)

/* ---- node helpers ------------------------------------------------------- */

static yaml_node_t *node(struct ld *L, int id) { return yaml_document_get_node(&L->doc, id); }

static const char *kind_name(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_MAPPING_NODE: return "a mapping";
  case YAML_SEQUENCE_NODE: return "a list";
  case YAML_SCALAR_NODE: return "a scalar";
  default: return "nothing";
  }
}

static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = sval(n);
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* A short, printable excerpt of a scalar for messages. */
static void excerpt(const char *s, char *out, size_t n) {
  size_t j = 0;
  for (size_t i = 0; s[i] && j + 4 < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    if (i >= 60) {
      out[j++] = '.';
      out[j++] = '.';
      out[j++] = '.';
      break;
    }
  }
  out[j] = '\0';
}

static int valid_var_char(char c, int first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

static const char *lookup_var(struct ld *L, const char *name) {
  if (L->opts && L->opts->getenv_fn) return L->opts->getenv_fn(L->opts->getenv_ud, name);
  return getenv(name);
}

/* Record that variable name was read for field (its value never: it may be a
 * secret). defaulted: the variable was unset or empty and the default was used. */
static void note_env(struct ld *L, const char *name, const char *field, int defaulted) {
  json_t *refs = L->r->env_refs;
  size_t i;
  json_t *e;
  json_array_foreach(refs, i, e) {
    if (!strcmp(jx_str(e, "variable"), name) && !strcmp(jx_str(e, "field"), field)) return;
  }
  json_array_append_new(refs, json_pack("{s:o, s:o, s:s}", "variable",
                                        jx_string_lossy(name, strlen(name)), "field",
                                        jx_string_lossy(field, strlen(field)), "from",
                                        defaulted ? "default" : "environment"));
}

/* Interpolate ${VAR} / ${VAR:-default} / $${ in a scalar. Returns an owned
 * string, or NULL after reporting an error. */
static void note_env(struct ld *L, const char *name, const char *field, int defaulted);

static char *interpolate(struct ld *L, const yaml_node_t *n, const char *field) {
  const char *s = sval(n);
  size_t len = n->data.scalar.length;
  struct buf b;
  buf_init(&b, RECIPE_MAX_FILE);
  int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  for (size_t i = 0; i < len;) {
    if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
      if (buf_puts(&b, "${")) goto too_long;
      i += 3;
      continue;
    }
    if (s[i] != '$' || i + 1 >= len || s[i + 1] != '{') {
      if (buf_putc(&b, s[i])) goto too_long;
      i++;
      continue;
    }
    int col = NCOL(n);
    if (plain && !memchr(s, '\n', i)) col += (int)i;
    const char *close = memchr(s + i + 2, '}', len - i - 2);
    if (!close) {
      err_pos(L, NLINE(n), col, "unterminated '${' (expected '${NAME}' or '${NAME:-default}')");
      goto fail;
    }
    const char *nm = s + i + 2;
    size_t nl = 0;
    while (nm + nl < close && valid_var_char(nm[nl], nl == 0)) nl++;
    const char *rest = nm + nl;
    int has_default = 0;
    if (rest + 1 < close + 1 && rest[0] == ':' && rest + 1 < close && rest[1] == '-')
      has_default = 1;
    if (nl == 0 || (rest != close && !has_default)) {
      char ex[80];
      snprintf(ex, sizeof ex, "%.*s", (int)(close - nm > 60 ? 60 : close - nm), nm);
      excerpt(ex, ex, sizeof ex);
      err_pos(L, NLINE(n), col,
              "bad variable reference '${%s}' (expected '${NAME}' or '${NAME:-default}'; NAME is "
              "letters, digits and '_')",
              ex);
      goto fail;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(nl > 255 ? 255 : nl), nm);
    const char *v = lookup_var(L, name);
    if (v && *v) {
      note_env(L, name, field, 0);
      if (buf_puts(&b, v)) goto too_long;
    } else if (has_default) {
      note_env(L, name, field, 1);
      if (buf_append(&b, rest + 2, (size_t)(close - rest - 2))) goto too_long;
    } else {
      err_pos(L, NLINE(n), col,
              "environment variable '%s' is %s (write '${%s:-default}' to give a default)", name,
              v ? "empty" : "not set", name);
      goto fail;
    }
    i = (size_t)(close - s) + 1;
  }
  return buf_take(&b, NULL);
too_long:
  err_at(L, n, "value longer than %u bytes after interpolation", (unsigned)RECIPE_MAX_FILE);
fail:
  buf_release(&b);
  return NULL;
}

/* names[] (NULL-terminated) as "a, b, c" into list[n]. */
static void name_list(const char *const *names, char *list, size_t n) {
  size_t off = 0;
  list[0] = '\0';
  for (int i = 0; names[i]; i++)
    off += (size_t)snprintf(list + off, off < n ? n - off : 0, "%s%s", i ? ", " : "", names[i]);
}

/* Check that n is a mapping whose keys are unique scalars from allowed[].
 * Returns 0 (after reporting bad keys), or AD_EINVAL after reporting that n is
 * not a mapping. */
static int check_map(struct ld *L, yaml_node_t *n, const char *path, const char *const *allowed) {
  if (n->type != YAML_MAPPING_NODE) {
    err_at(L, n, "%s: expected a mapping, got %s", path, kind_name(n));
    return AD_EINVAL;
  }
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key);
    if (!k) continue;
    if (k->type != YAML_SCALAR_NODE) {
      err_at(L, k, "%s: keys must be plain strings, got %s", path, kind_name(k));
      continue;
    }
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
      yaml_node_t *k2 = node(L, q->key);
      if (k2 && k2->type == YAML_SCALAR_NODE && !strcmp(sval(k2), sval(k))) {
        char ex[80];
        excerpt(sval(k), ex, sizeof ex);
        err_at(L, k, "duplicate key '%s' in %s (first at line %d)", ex, path, NLINE(k2));
        break;
      }
    }
    if (!allowed) continue;
    int ok = 0;
    for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(allowed[i], sval(k));
    if (!ok) {
      char list[512], ex[80];
      name_list(allowed, list, sizeof list);
      excerpt(sval(k), ex, sizeof ex);
      err_at(L, k, "unknown key '%s' in %s; expected one of: %s", ex, path, list);
    }
  }
  return 0;
}

static yaml_node_t *map_get(struct ld *L, yaml_node_t *n, const char *key) {
  if (!n || n->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key);
    if (k && k->type == YAML_SCALAR_NODE && !strcmp(sval(k), key)) return node(L, p->value);
  }
  return NULL;
}

/* The getters below return 0, or AD_EINVAL after reporting the problem. */

/* Value as a string (interpolated). */
static int get_scalar(struct ld *L, yaml_node_t *n, const char *path, char **out) {
  *out = NULL;
  if (n->type != YAML_SCALAR_NODE) {
    err_at(L, n, "%s: expected a string, got %s", path, kind_name(n));
    return AD_EINVAL;
  }
  *out = interpolate(L, n, path);
  return *out ? 0 : AD_EINVAL;
}

/* Report that the value v of n is not what path expects ("expected <what>, got
 * '<v>'"); frees v. Returns AD_EINVAL. */
static int bad_value(struct ld *L, yaml_node_t *n, const char *path, const char *what, char *v) {
  char ex[80];
  excerpt(v, ex, sizeof ex);
  err_at(L, n, "%s: expected %s, got '%s'", path, what, ex);
  free(v);
  return AD_EINVAL;
}

static int get_str(struct ld *L, yaml_node_t *n, const char *path, int allow_empty, char **dst) {
  char *v;
  if (get_scalar(L, n, path, &v)) return AD_EINVAL;
  if (!allow_empty && !*v) {
    err_at(L, n, "%s: must not be empty", path);
    free(v);
    return AD_EINVAL;
  }
  free(*dst);
  *dst = v;
  return 0;
}

static int get_int(struct ld *L, yaml_node_t *n, const char *path, long long lo, long long hi,
                   long long *dst) {
  char *v;
  if (get_scalar(L, n, path, &v)) return AD_EINVAL;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 0);
  if (!*v || *end || errno) return bad_value(L, n, path, "an integer", v);
  free(v);
  if (x < lo || x > hi) {
    err_at(L, n, "%s: %lld is out of range (%lld..%lld)", path, x, lo, hi);
    return AD_EINVAL;
  }
  *dst = x;
  return 0;
}

static int get_intv(struct ld *L, yaml_node_t *n, const char *path, int lo, int hi, int *dst) {
  long long x;
  if (get_int(L, n, path, lo, hi, &x)) return AD_EINVAL;
  *dst = (int)x;
  return 0;
}

static int get_num(struct ld *L, yaml_node_t *n, const char *path, double lo, double hi,
                   double *dst) {
  char *v;
  if (get_scalar(L, n, path, &v)) return AD_EINVAL;
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || !isfinite(x)) return bad_value(L, n, path, "a number", v);
  free(v);
  if (x < lo || x > hi) {
    err_at(L, n, "%s: %g is out of range (%g..%g)", path, x, lo, hi);
    return AD_EINVAL;
  }
  *dst = x;
  return 0;
}

/* true/yes/on/1 or false/no/off/0 (any case): 0 and *out, else AD_EINVAL. */
static int parse_bool(const char *v, int *out) {
  static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                           "0"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(v, t[i])) {
      *out = 1;
      return 0;
    }
    if (!strcasecmp(v, f[i])) {
      *out = 0;
      return 0;
    }
  }
  return AD_EINVAL;
}

static int get_bool(struct ld *L, yaml_node_t *n, const char *path, int *dst) {
  char *v;
  if (get_scalar(L, n, path, &v)) return AD_EINVAL;
  int b;
  if (parse_bool(v, &b)) return bad_value(L, n, path, "a boolean (true/false)", v);
  free(v);
  *dst = b;
  return 0;
}

/* One of names[] (NULL-terminated): returns its index, or -1 (none) after
 * reporting. */
static int get_enum(struct ld *L, yaml_node_t *n, const char *path, const char *const *names) {
  char *v;
  if (get_scalar(L, n, path, &v)) return -1;
  for (int i = 0; names[i]; i++) {
    if (!strcmp(names[i], v)) {
      free(v);
      return i;
    }
  }
  char list[256], ex[80];
  name_list(names, list, sizeof list);
  excerpt(v, ex, sizeof ex);
  err_at(L, n, "%s: unknown value '%s'; expected one of: %s", path, ex, list);
  free(v);
  return -1;
}

/* YAML -> JSON for extra_body / extra. Plain scalars are typed (null, bool,
 * integer, real, else string); quoted scalars stay strings. */
static json_t *to_json(struct ld *L, yaml_node_t *n, const char *path, int depth) {
  if (--L->json_budget < 0) {
    if (L->json_budget == -1)
      err_at(L, n, "%s: too many nodes (more than %d)", path, RECIPE_JSON_BUDGET);
    return NULL;
  }
  if (depth > RECIPE_JSON_DEPTH) {
    err_at(L, n, "%s: nested deeper than %d levels", path, RECIPE_JSON_DEPTH);
    return NULL;
  }
  if (n->type == YAML_SCALAR_NODE) {
    if (is_null(n)) return json_null();
    char *v = interpolate(L, n, path);
    if (!v) return NULL;
    json_t *j = NULL;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
      char *end;
      if (!strcmp(v, "true") || !strcmp(v, "false")) j = json_boolean(!strcmp(v, "true"));
      else if (!strcmp(v, "null") || !strcmp(v, "~")) j = json_null();
      if (!j && *v) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*end && !errno) j = json_integer(x);
      }
      if (!j && *v) {
        double d = strtod(v, &end);
        if (!*end && isfinite(d)) j = json_real(d);
      }
    }
    if (!j) j = jx_string_lossy(v, strlen(v));
    free(v);
    return j;
  }
  if (n->type == YAML_SEQUENCE_NODE) {
    json_t *a = json_array();
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
      yaml_node_t *c = node(L, *it);
      json_t *cj = c ? to_json(L, c, path, depth + 1) : NULL;
      if (!cj) {
        json_decref(a);
        return NULL;
      }
      json_array_append_new(a, cj);
    }
    return a;
  }
  if (n->type == YAML_MAPPING_NODE) {
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
      if (!k || !v) continue;
      if (k->type != YAML_SCALAR_NODE) {
        err_at(L, k, "%s: keys must be strings, got %s", path, kind_name(k));
        json_decref(o);
        return NULL;
      }
      json_t *kj = jx_string_lossy(sval(k), k->data.scalar.length);
      const char *key = json_string_value(kj);
      if (json_object_get(o, key)) {
        err_at(L, k, "%s: duplicate key '%s'", path, key);
        json_decref(kj);
        json_decref(o);
        return NULL;
      }
      json_t *vj = to_json(L, v, path, depth + 1);
      if (!vj) {
        json_decref(kj);
        json_decref(o);
        return NULL;
      }
      json_object_set_new(o, key, vj);
      json_decref(kj);
    }
    return o;
  }
  return NULL;
}

static json_t *get_object(struct ld *L, yaml_node_t *n, const char *path) {
  if (n->type != YAML_MAPPING_NODE) {
    err_at(L, n, "%s: expected a mapping, got %s", path, kind_name(n));
    return NULL;
  }
  return to_json(L, n, path, 0);
}

/* ---- sections ----------------------------------------------------------- */

static const char *const k_top[] = {"name",        "task",       "seed",      "method",    "goal",
                                    "concurrency", "sources",    "endpoints", "roles",     "accept",
                                    "budgets",     "evaluation", "checks",    "baselines", "output",
                                    "optimize",    "finalize",   "analysis",  NULL};
static const char *const k_sources[] = {"path",         "format",     "id_field", "title_field",
                                        "text_field",   "max_chars",  "limit",    "shuffle",
                                        "shuffle_seed", "on_invalid", NULL};
static const char *const k_endpoint[] = {"base_url",
                                         "base_urls",
                                         "api_key_env",
                                         "headers",
                                         "max_inflight",
                                         "requests_per_min",
                                         "tokens_per_min",
                                         "connect_timeout_ms",
                                         "request_timeout_ms",
                                         "max_retries",
                                         "extra_body",
                                         "json_schema",
                                         "prices",
                                         NULL};
static const char *const k_price[] = {"input_per_mtok", "output_per_mtok", NULL};
static const char *const k_role[] = {"endpoint",      "model",       "prompt",
                                     "system_prompt", "temperature", "top_p",
                                     "max_tokens",    "extra",       NULL};
static const char *const k_challenger[] = {"endpoint",    "model", "prompt",     "system_prompt",
                                           "temperature", "top_p", "max_tokens", "extra",
                                           "parallel",    NULL};
static const char *const k_solver[] = {"endpoint",    "model", "prompt",     "system_prompt",
                                       "temperature", "top_p", "max_tokens", "extra",
                                       "samples",     NULL};
static const char *const k_roles[] = {"orchestrator", "challenger", "quality",    "weak", "strong",
                                      "judge",        "extractor",  "loop_judge", NULL};
static const char *const k_accept[] = {"preset", "bounds", "short_circuit", "pass_threshold", NULL};
static const char *const k_budgets[] = {
    "rounds_per_source", "examples_per_source", "max_calls", "max_tokens",
    "max_cost",          "agent_steps",         NULL};
static const char *const k_evaluation[] = {"early_stop", "wave", "batch_judge", NULL};
static const char *const k_checks[] = {"max_context_chars",  "min_context_chars",
                                       "leakage_ngram",      "leakage_max_overlap",
                                       "rubric_min",         "rubric_max",
                                       "max_weight",         "dedup",
                                       "verifiable_matcher", "rubric_preset",
                                       "positive_min",       "positive_max",
                                       "negative_min",       "negative_max",
                                       "reasoning_skills",   "max_question_chars",
                                       "reject_patterns",    NULL};
static const char *const k_baselines[] = {"k", "rip_threshold", "ac_min_share", NULL};
static const char *const k_output[] = {"folder", "store", NULL};
static const char *const k_optimize[] = {
    "iterations",  "parallel",    "train",          "val",         "test",    "minibatch",
    "temperature", "strategy",    "objective",      "editable",    "budgets", "max_prompt_chars",
    "analyzer",    "implementer", "minibatch_gate", "merge_every", NULL};
static const char *const k_opt_budgets[] = {"max_calls", "max_tokens", "max_cost", NULL};
static const char *const k_opt_role[] = {"endpoint",    "model",      "prompt",
                                         "temperature", "max_tokens", NULL};
static const char *const v_opt_objective[] = {"pass_rate", "acceptance", "gap", NULL};
static const char *const v_opt_strategy[] = {"boltzmann", "pareto", NULL};
static const char *const v_task[] = {"rubric", "verifiable", NULL};
static const char *const v_format[] = {"auto", "jsonl", "dir", NULL};
static const char *const v_on_invalid[] = {"fail", "skip", NULL}; /* SRC_INVALID_* order */
/* Indexed as enum score_matcher ("normalized" is read as SCORE_NORMALISED). */
static const char *const v_matcher[] = {"auto", "exact",      "normalised", "numeric",
                                        "llm",  "normalized", NULL};
_Static_assert(SCORE_AUTO == 0 && SCORE_EXACT == 1 && SCORE_NORMALISED == 2 && SCORE_NUMERIC == 3 &&
                   SCORE_LLM == 4,
               "v_matcher is indexed by enum score_matcher");
static const char *const v_presets[] = {"cs-deployed", "cs-prose", "math-exact",
                                        "verifiable-majority", NULL};

static void parse_sources(struct ld *L, yaml_node_t *n) {
  struct src_options *o = &L->r->sources;
  if (check_map(L, n, "sources", k_sources)) return;
  yaml_node_t *v;
  if ((v = map_get(L, n, "path"))) get_str(L, v, "sources.path", 0, (char **)&o->path);
  else err_at(L, n, "missing required key 'path' in sources");
  if ((v = map_get(L, n, "format"))) {
    int f = get_enum(L, v, "sources.format", v_format);
    if (f >= 0) o->format = (enum src_format)f;
  }
  if ((v = map_get(L, n, "id_field"))) get_str(L, v, "sources.id_field", 0, (char **)&o->id_field);
  if ((v = map_get(L, n, "title_field")))
    get_str(L, v, "sources.title_field", 0, (char **)&o->title_field);
  if ((v = map_get(L, n, "text_field")))
    get_str(L, v, "sources.text_field", 0, (char **)&o->text_field);
  long long x;
  if ((v = map_get(L, n, "max_chars")) && !get_int(L, v, "sources.max_chars", 0, LLONG_MAX, &x))
    o->max_chars = (size_t)x;
  if ((v = map_get(L, n, "limit")) && !get_int(L, v, "sources.limit", 0, LLONG_MAX, &x))
    o->limit = (size_t)x;
  if ((v = map_get(L, n, "shuffle"))) get_bool(L, v, "sources.shuffle", &o->shuffle);
  if ((v = map_get(L, n, "shuffle_seed")) &&
      !get_int(L, v, "sources.shuffle_seed", LLONG_MIN, LLONG_MAX, &x))
    o->shuffle_seed = (uint64_t)x;
  if ((v = map_get(L, n, "on_invalid"))) {
    int f = get_enum(L, v, "sources.on_invalid", v_on_invalid);
    if (f >= 0) o->on_invalid = f;
  }
}

static int valid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!(valid_var_char(*s, 0) || *s == '-' || *s == '.')) return 0;
  return 1;
}

/* An environment variable name as the shell writes it. */
static int valid_env_name(const char *s) {
  if (!valid_var_char(*s, 1)) return 0;
  for (s++; *s; s++)
    if (!valid_var_char(*s, 0)) return 0;
  return 1;
}

/* A well-formed name that is unset and looks like a key (e.g. 'hf_...' pasted in). */
static int looks_like_pasted_key(struct ld *L, const char *name) {
  return secret_looks_like_key(name) && !lookup_var(L, name);
}

static int valid_url(const char *u) {
  return !strcmp(u, "sim") || !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8);
}

static void add_url(struct ld *L, struct recipe_endpoint *e, yaml_node_t *n, const char *path) {
  char *u = NULL;
  if (get_str(L, n, path, 0, &u)) return;
  if (!valid_url(u)) {
    char ex[80];
    excerpt(u, ex, sizeof ex);
    err_at(L, n, "%s: '%s' is not a URL (expected http://..., https://... or sim)", path, ex);
    free(u);
    return;
  }
  if (e->n_urls >= LLM_MAX_URLS) {
    err_at(L, n, "%s: more than %d URLs", path, LLM_MAX_URLS);
    free(u);
    return;
  }
  /* https://user:KEY@host/...: the userinfo is a credential (util/secret.h). */
  const char *hs = strstr(u, "://"), *at = hs ? strchr(hs + 3, '@') : NULL;
  const char *sl = hs ? strchr(hs + 3, '/') : NULL;
  if (at && (!sl || at < sl)) {
    char *ui = xstrndup(hs + 3, (size_t)(at - hs - 3));
    char *colon = strchr(ui, ':');
    secret_add(colon ? colon + 1 : ui);
    free(ui);
  }
  e->base_urls[e->n_urls++] = u;
}

static int header_name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c <= 0x20 || c >= 0x7f || c == ':') return 0;
  }
  return 1;
}

static int secret_header(const char *name) {
  return !strcasecmp(name, "authorization") || !strcasecmp(name, "proxy-authorization") ||
         strcasestr(name, "key") || strcasestr(name, "token") || strcasestr(name, "secret") ||
         strcasestr(name, "cookie");
}

static void parse_headers(struct ld *L, struct recipe_endpoint *e, yaml_node_t *n,
                          const char *path) {
  if (check_map(L, n, path, NULL)) return;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
    char ex[80];
    excerpt(sval(k), ex, sizeof ex);
    if (!header_name_ok(sval(k))) {
      err_at(L, k, "%s: '%s' is not a valid header name", path, ex);
      continue;
    }
    if (e->n_headers >= LLM_MAX_HEADERS) {
      err_at(L, k, "%s: more than %d headers", path, LLM_MAX_HEADERS);
      return;
    }
    char *val = NULL;
    if (get_scalar(L, v, path, &val)) continue;
    if (strpbrk(val, "\r\n")) {
      err_at(L, v, "%s.%s: header values must not contain line breaks", path, ex);
      free(val);
      continue;
    }
    /* A secret-looking header's value, and any value taken from the environment, is a
     * secret: masked wherever text leaves the process (util/secret.h). */
    if (secret_header(sval(k)) || strstr(sval(v), "${")) {
      secret_add(val);
      const char *sp = strrchr(val, ' '); /* "Bearer <token>": the token alone too */
      if (sp) secret_add(sp + 1);
    }
    e->headers[e->n_headers] = xasprintf("%s: %s", sval(k), val);
    e->headers_raw[e->n_headers] = secret_header(sval(k)) ? xasprintf("%s: <redacted>", sval(k))
                                                          : xasprintf("%s: %s", sval(k), sval(v));
    e->n_headers++;
    free(val);
  }
}

static void parse_prices(struct ld *L, struct recipe_endpoint *e, yaml_node_t *n,
                         const char *path) {
  if (check_map(L, n, path, NULL)) return;
  size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (cnt > RECIPE_MAX_PRICES) {
    err_at(L, n, "%s: more than %d models", path, RECIPE_MAX_PRICES);
    return;
  }
  e->prices = xcalloc(cnt ? cnt : 1, sizeof *e->prices);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
    char sub[512], ex[80];
    excerpt(sval(k), ex, sizeof ex);
    snprintf(sub, sizeof sub, "%s.%s", path, ex);
    if (check_map(L, v, sub, k_price)) continue;
    struct recipe_price *pr = &e->prices[e->n_prices];
    yaml_node_t *f;
    char fp[600];
    snprintf(fp, sizeof fp, "%s.input_per_mtok", sub);
    if ((f = map_get(L, v, "input_per_mtok"))) get_num(L, f, fp, 0, 1e9, &pr->input_per_mtok);
    snprintf(fp, sizeof fp, "%s.output_per_mtok", sub);
    if ((f = map_get(L, v, "output_per_mtok"))) get_num(L, f, fp, 0, 1e9, &pr->output_per_mtok);
    pr->model = xstrdup(sval(k));
    e->n_prices++;
  }
}

static void endpoint_defaults(struct recipe_endpoint *e) {
  e->max_inflight = 64;
  e->connect_timeout_ms = 10000;
  e->request_timeout_ms = 600000;
  e->max_retries = 8;
  e->json_schema = 1;
}

static void parse_endpoint(struct ld *L, struct recipe_endpoint *e, yaml_node_t *n,
                           const char *name) {
  char path[300];
  snprintf(path, sizeof path, "endpoints.%s", name);
  endpoint_defaults(e);
  e->line = NLINE(n);
  e->col = NCOL(n);
  if (check_map(L, n, path, k_endpoint)) return;
  yaml_node_t *v, *u1 = map_get(L, n, "base_url"), *u2 = map_get(L, n, "base_urls");
  char fp[340];
#define FP(key) (snprintf(fp, sizeof fp, "%s.%s", path, key), fp)
  if (u1 && u2) err_at(L, u2, "%s: give either base_url or base_urls, not both", path);
  if (u1) add_url(L, e, u1, FP("base_url"));
  else if (u2) {
    if (u2->type != YAML_SEQUENCE_NODE) {
      err_at(L, u2, "%s: expected a list of URLs, got %s", FP("base_urls"), kind_name(u2));
    } else {
      if (u2->data.sequence.items.top == u2->data.sequence.items.start)
        err_at(L, u2, "%s: the list is empty", FP("base_urls"));
      for (yaml_node_item_t *it = u2->data.sequence.items.start; it < u2->data.sequence.items.top;
           it++) {
        yaml_node_t *c = node(L, *it);
        if (c) add_url(L, e, c, FP("base_urls"));
      }
    }
  } else if (!strcmp(name, "sim")) {
    e->base_urls[e->n_urls++] = xstrdup("sim");
  } else {
    err_at(L, n, "missing required key 'base_url' (or 'base_urls') in %s", path);
  }
  if ((v = map_get(L, n, "api_key_env"))) {
    /* A variable's NAME: [A-Za-z_][A-Za-z0-9_]*. Anything else - a key pasted in, or
     * '${VAR}', which gives the key itself - is refused without echoing it or keeping it. */
    int interp = v->type == YAML_SCALAR_NODE && strstr(sval(v), "${");
    if (!get_str(L, v, FP("api_key_env"), 0, &e->api_key_env) &&
        (interp || !valid_env_name(e->api_key_env) || looks_like_pasted_key(L, e->api_key_env))) {
      if (interp)
        err_at(L, v,
               "%s: give the variable's NAME without '${...}' (api_key_env: OPENAI_API_KEY, "
               "not ${OPENAI_API_KEY}, which would be the key itself)",
               fp);
      else
        err_at(L, v,
               "%s: not an environment variable name (letters, digits and '_', not starting "
               "with a digit; give the NAME of the variable that holds the key, never the key "
               "itself)",
               fp);
      secret_add(e->api_key_env); /* it may be a key: never printed from here on */
      free(e->api_key_env);
      e->api_key_env = NULL;
    } else if (e->api_key_env) {
      /* Checked here, not at the first call: `validate` catches a misspelt name, and `run`
       * stops before it creates anything. */
      const char *key = lookup_var(L, e->api_key_env);
      if (!key || !*key)
        err_at(L, v,
               "%s: environment variable %s is %s (export it, or correct the name; the "
               "variable holds the key, the recipe only its name)",
               fp, e->api_key_env, key ? "empty" : "not set");
    }
  }
  if ((v = map_get(L, n, "headers"))) parse_headers(L, e, v, FP("headers"));
  if ((v = map_get(L, n, "max_inflight")))
    get_intv(L, v, FP("max_inflight"), 1, 100000, &e->max_inflight);
  if ((v = map_get(L, n, "requests_per_min")))
    get_num(L, v, FP("requests_per_min"), 0, 1e9, &e->requests_per_min);
  if ((v = map_get(L, n, "tokens_per_min")))
    get_num(L, v, FP("tokens_per_min"), 0, 1e12, &e->tokens_per_min);
  if ((v = map_get(L, n, "connect_timeout_ms")))
    get_intv(L, v, FP("connect_timeout_ms"), 1, 3600000, &e->connect_timeout_ms);
  if ((v = map_get(L, n, "request_timeout_ms")))
    get_intv(L, v, FP("request_timeout_ms"), 1, 86400000, &e->request_timeout_ms);
  if ((v = map_get(L, n, "max_retries")))
    get_intv(L, v, FP("max_retries"), 0, 100, &e->max_retries);
  if ((v = map_get(L, n, "extra_body"))) e->extra_body = get_object(L, v, FP("extra_body"));
  if ((v = map_get(L, n, "json_schema"))) {
    char *sv;
    int b;
    if (!get_scalar(L, v, FP("json_schema"), &sv)) {
      if (!strcmp(sv, "basic")) e->json_schema = RECIPE_SCHEMA_BASIC;
      else if (!parse_bool(sv, &b)) e->json_schema = b ? RECIPE_SCHEMA_STRICT : RECIPE_SCHEMA_OFF;
      else {
        bad_value(L, v, FP("json_schema"), "true, false or basic", sv);
        sv = NULL; /* bad_value took it */
      }
      free(sv);
    }
  }
  if ((v = map_get(L, n, "prices"))) parse_prices(L, e, v, FP("prices"));
#undef FP
}

static void parse_endpoints(struct ld *L, yaml_node_t *n) {
  struct recipe *r = L->r;
  if (n && !check_map(L, n, "endpoints", NULL)) {
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt > RECIPE_MAX_ENDPOINTS) {
      err_at(L, n, "endpoints: more than %d endpoints", RECIPE_MAX_ENDPOINTS);
      cnt = 0;
    }
    r->endpoints = xcalloc(cnt + 1, sizeof *r->endpoints);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; cnt && p < n->data.mapping.pairs.top;
         p++) {
      yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
      if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
      char ex[80];
      excerpt(sval(k), ex, sizeof ex);
      if (!valid_name(sval(k))) {
        err_at(L, k,
               "endpoints: '%s' is not a valid endpoint name (letters, digits, '_', '-', '.')", ex);
        continue;
      }
      if (recipe_find_endpoint(r, sval(k)) >= 0) continue; /* duplicate: reported by check_map */
      struct recipe_endpoint *e = &r->endpoints[r->n_endpoints];
      e->name = xstrdup(sval(k));
      r->n_endpoints++;
      parse_endpoint(L, e, v, e->name);
    }
  }
  if (!r->endpoints) r->endpoints = xcalloc(1, sizeof *r->endpoints);
  if (recipe_find_endpoint(r, "sim") < 0) {
    struct recipe_endpoint *e = &r->endpoints[r->n_endpoints];
    endpoint_defaults(e);
    e->name = xstrdup("sim");
    e->base_urls[0] = xstrdup("sim");
    e->n_urls = 1;
    e->builtin = 1;
    r->n_endpoints++;
  }
}

static void parse_role(struct ld *L, enum recipe_role_id id, yaml_node_t *n) {
  struct recipe_role *ro = &L->r->roles[id];
  char path[64], fp[96];
  snprintf(path, sizeof path, "roles.%s", role_names[id]);
#define FP(key) (snprintf(fp, sizeof fp, "%s.%s", path, key), fp)
  int optional = id == RECIPE_ROLE_ORCHESTRATOR || id == RECIPE_ROLE_QUALITY;
  if (optional && n->type == YAML_SCALAR_NODE) {
    int b = 0;
    char *v = NULL;
    if (is_null(n)) {
      ro->present = 0;
      return;
    }
    if (get_scalar(L, n, path, &v)) return;
    if (parse_bool(v, &b) || b) {
      err_at(L, n, "%s: expected a mapping (or false to turn the role off)", path);
    }
    free(v);
    ro->present = 0;
    return;
  }
  int solver = id == RECIPE_ROLE_WEAK || id == RECIPE_ROLE_STRONG;
  ro->line = NLINE(n);
  ro->col = NCOL(n);
  L->role_nodes[id] = n;
  if (check_map(L, n, path,
                solver                         ? k_solver
                : id == RECIPE_ROLE_CHALLENGER ? k_challenger
                                               : k_role))
    return;
  ro->present = 1;
  yaml_node_t *v;
  if ((v = map_get(L, n, "endpoint"))) {
    if (!get_str(L, v, FP("endpoint"), 0, &ro->endpoint)) {
      ro->endpoint_index = recipe_find_endpoint(L->r, ro->endpoint);
      if (ro->endpoint_index < 0) {
        char list[512] = "";
        size_t off = 0;
        for (int i = 0; i < L->r->n_endpoints; i++)
          off += (size_t)snprintf(list + off, off < sizeof list ? sizeof list - off : 0, "%s%s",
                                  i ? ", " : "", L->r->endpoints[i].name);
        char ex[80];
        excerpt(ro->endpoint, ex, sizeof ex);
        err_at(L, v, "%s: endpoint '%s' is not declared; declared endpoints: %s", fp, ex, list);
      }
    }
  } else {
    err_at(L, n, "missing required key 'endpoint' in %s", path);
  }
  if ((v = map_get(L, n, "model"))) get_str(L, v, FP("model"), 0, &ro->model);
  else err_at(L, n, "missing required key 'model' in %s", path);
  if ((v = map_get(L, n, "prompt"))) {
    L->prompt_nodes[id] = v;
    get_str(L, v, FP("prompt"), 0, &L->prompt_rel[id]);
  }
  if ((v = map_get(L, n, "system_prompt"))) {
    L->sysprompt_nodes[id] = v;
    get_str(L, v, FP("system_prompt"), 0, &L->sysprompt_rel[id]);
  }
  if ((v = map_get(L, n, "temperature"))) get_num(L, v, FP("temperature"), 0, 10, &ro->temperature);
  if ((v = map_get(L, n, "top_p"))) get_num(L, v, FP("top_p"), 0, 1, &ro->top_p);
  if ((v = map_get(L, n, "max_tokens")))
    get_intv(L, v, FP("max_tokens"), 0, 100000000, &ro->max_tokens);
  if ((v = map_get(L, n, "extra"))) ro->extra = get_object(L, v, FP("extra"));
  if (solver && (v = map_get(L, n, "samples"))) {
    if (!get_intv(L, v, FP("samples"), 1, ACCEPT_MAX_SAMPLES, &ro->samples))
      L->explicit_samples[id] = 1;
  }
  if (id == RECIPE_ROLE_CHALLENGER && (v = map_get(L, n, "parallel")))
    get_intv(L, v, FP("parallel"), 1, SCREEN_MAX_PARALLEL, &ro->parallel);
#undef FP
}

static void role_defaults(struct recipe *r) {
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    struct recipe_role *ro = &r->roles[i];
    ro->endpoint_index = -1;
    ro->top_p = LLM_UNSET;
    ro->samples = 1;
    ro->parallel = 1;
    /* max_tokens: room for a reasoning model's thinking plus the reply, and a bound on
     * a reply that runs away (docs/servers.md); 0 in the recipe = not sent */
    switch (i) {
    case RECIPE_ROLE_WEAK:
    case RECIPE_ROLE_STRONG:
      ro->temperature = 1.0;
      ro->samples = 3;
      ro->max_tokens = 8192;
      break;
    case RECIPE_ROLE_CHALLENGER:
      ro->temperature = 0.7;
      ro->max_tokens = 4096;
      break;
    case RECIPE_ROLE_ORCHESTRATOR:
      ro->temperature = 0.7;
      ro->max_tokens = 2048;
      break;
    default:
      ro->temperature = 0.0;
      ro->max_tokens = 2048;
      break;
    }
  }
}

static void parse_roles(struct ld *L, yaml_node_t *n, yaml_node_t *root) {
  struct recipe *r = L->r;
  if (!n) {
    err_at(L, root,
           "missing required key 'roles' in the recipe (challenger, weak, strong and "
           "judge are required)");
    return;
  }
  if (check_map(L, n, "roles", k_roles)) return;
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    yaml_node_t *v = map_get(L, n, role_names[i]);
    if (v) parse_role(L, (enum recipe_role_id)i, v);
    else if (i != RECIPE_ROLE_ORCHESTRATOR && i != RECIPE_ROLE_QUALITY &&
             i != RECIPE_ROLE_EXTRACTOR && i != RECIPE_ROLE_LOOP_JUDGE)
      err_at(L, n, "missing required key '%s' in roles", role_names[i]);
  }
  /* quality defaults to the judge's endpoint and model when not mentioned */
  struct recipe_role *q = &r->roles[RECIPE_ROLE_QUALITY], *j = &r->roles[RECIPE_ROLE_JUDGE];
  if (!map_get(L, n, "quality") && j->present && j->endpoint && j->model) {
    q->present = 1;
    q->endpoint = xstrdup(j->endpoint);
    q->model = xstrdup(j->model);
    q->endpoint_index = j->endpoint_index;
  }
}

static void parse_bounds_list(struct ld *L, yaml_node_t *n, const char *path,
                              struct accept_spec *s) {
  if (n->type != YAML_SEQUENCE_NODE) {
    err_at(L, n, "%s: expected a list of bounds like 'weak_mean <= 0.65', got %s", path,
           kind_name(n));
    return;
  }
  int idx = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, idx++) {
    yaml_node_t *c = node(L, *it);
    if (!c) continue;
    char ip[80];
    snprintf(ip, sizeof ip, "%s[%d]", path, idx);
    char *text = NULL;
    if (get_scalar(L, c, ip, &text)) continue;
    if (s->n >= ACCEPT_MAX_BOUNDS) {
      err_at(L, c, "%s: more than %d bounds", ip, ACCEPT_MAX_BOUNDS);
      free(text);
      return;
    }
    char e[512];
    if (accept_bound_parse(text, &s->bounds[s->n], e, sizeof e)) err_at(L, c, "%s: %s", ip, e);
    else s->n++;
    free(text);
  }
}

/* 'accept: all' - the explicit "accept every candidate that passes the checks" (no
 * bounds); an empty list of bounds is refused instead of meaning that silently. */
#define ACCEPT_ALL "all"

static void set_preset(struct ld *L, yaml_node_t *v, const char *path) {
  struct recipe *r = L->r;
  if (v->type == YAML_SCALAR_NODE && !strcmp(sval(v), ACCEPT_ALL)) {
    r->accept.n = 0;
    snprintf(r->accept_preset, sizeof r->accept_preset, "%s", ACCEPT_ALL);
    return;
  }
  int i = get_enum(L, v, path, v_presets);
  if (i < 0) return;
  if (recipe_accept_preset(v_presets[i], r->task, &r->accept)) {
    err_at(L, v, "%s: preset '%s' failed to build (accept module rejected its bounds)", path,
           v_presets[i]);
    return;
  }
  snprintf(r->accept_preset, sizeof r->accept_preset, "%s", v_presets[i]);
}

static void parse_accept(struct ld *L, yaml_node_t *n) {
  struct recipe *r = L->r;
  if (r->task == CAND_TASK_VERIFIABLE) accept_spec_default_verifiable(&r->accept);
  else accept_spec_default_rubric(&r->accept);
  if (!n) return;
  if (n->type == YAML_SCALAR_NODE) { /* accept: cs-deployed */
    set_preset(L, n, "accept");
    return;
  }
  if (n->type == YAML_SEQUENCE_NODE) {
    r->accept.n = 0;
    if (n->data.sequence.items.top == n->data.sequence.items.start) {
      err_at(L, n,
             "accept: the list of bounds is empty, which would accept every candidate; write "
             "'accept: " ACCEPT_ALL "' if that is what you want, or give a preset or bounds");
      return;
    }
    parse_bounds_list(L, n, "accept", &r->accept);
    return;
  }
  if (check_map(L, n, "accept", k_accept)) return;
  yaml_node_t *v, *b = map_get(L, n, "bounds");
  if ((v = map_get(L, n, "preset"))) set_preset(L, v, "accept.preset");
  else if (b) r->accept.n = 0;
  if (b) parse_bounds_list(L, b, "accept.bounds", &r->accept); /* appended to a preset */
  if ((v = map_get(L, n, "short_circuit")))
    get_bool(L, v, "accept.short_circuit", &r->accept.short_circuit);
  if ((v = map_get(L, n, "pass_threshold")))
    get_num(L, v, "accept.pass_threshold", 0, 1, &r->accept.pass_threshold);
  int all = !strcmp(r->accept_preset, ACCEPT_ALL);
  if (all && r->accept.n)
    err_at(L, b,
           "accept.bounds: preset '" ACCEPT_ALL
           "' accepts every candidate and takes no "
           "bounds");
  else if (r->accept.n == 0 && !all)
    err_at(L, n,
           "accept: no bounds, which would accept every candidate (give a preset or a list of "
           "bounds, or write 'accept: " ACCEPT_ALL "' if that is what you want)");
}

static void parse_budgets(struct ld *L, yaml_node_t *n) {
  struct recipe_budgets *b = &L->r->budgets;
  /* The paper's agents needed 6.59 rounds on average for CS (a long tail: its Fig. 4
   * example was accepted in round 17) and ran legal with a hard cap of 15 rounds: 15
   * (docs/recipes.md, "Budgets"). */
  b->rounds_per_source = RECIPE_DEFAULT_ROUNDS;
  b->examples_per_source = 1;
  b->agent_steps = 40;
  if (!n || check_map(L, n, "budgets", k_budgets)) return;
  yaml_node_t *v;
  long long x;
  if ((v = map_get(L, n, "rounds_per_source")))
    get_intv(L, v, "budgets.rounds_per_source", 1, 1000, &b->rounds_per_source);
  if ((v = map_get(L, n, "examples_per_source")))
    get_intv(L, v, "budgets.examples_per_source", 1, 1000, &b->examples_per_source);
  if ((v = map_get(L, n, "agent_steps")))
    get_intv(L, v, "budgets.agent_steps", 1, 10000, &b->agent_steps);
  if ((v = map_get(L, n, "max_calls")) && !get_int(L, v, "budgets.max_calls", 0, LLONG_MAX, &x))
    b->max_calls = x;
  if ((v = map_get(L, n, "max_tokens")) && !get_int(L, v, "budgets.max_tokens", 0, LLONG_MAX, &x))
    b->max_tokens = x;
  if ((v = map_get(L, n, "max_cost"))) get_num(L, v, "budgets.max_cost", 0, 1e12, &b->max_cost);
}

/* checks.max_question_chars and checks.reject_patterns: the programmatic overrides
 * (eval/override.h), compiled into the recipe's override set. */
static void parse_overrides(struct ld *L, yaml_node_t *n) {
  struct recipe *r = L->r;
  yaml_node_t *v, *pl = map_get(L, n, "reject_patterns");
  int maxq = 0, np = 0;
  char *pats[OVERRIDE_MAX_PATTERNS];
  if ((v = map_get(L, n, "max_question_chars")))
    get_intv(L, v, "checks.max_question_chars", 0, INT_MAX, &maxq);
  if (pl && pl->type != YAML_SEQUENCE_NODE) {
    err_at(L, pl, "checks.reject_patterns: expected a list of regular expressions, got %s",
           kind_name(pl));
    pl = NULL;
  }
  int idx = 0;
  for (yaml_node_item_t *it = pl ? pl->data.sequence.items.start : NULL;
       pl && it < pl->data.sequence.items.top; it++, idx++) {
    yaml_node_t *c = node(L, *it);
    char ip[80], *text = NULL, err[300];
    snprintf(ip, sizeof ip, "checks.reject_patterns[%d]", idx);
    if (!c || get_str(L, c, ip, 0, &text)) continue;
    if (np >= OVERRIDE_MAX_PATTERNS) {
      err_at(L, c, "%s: more than %d patterns", ip, OVERRIDE_MAX_PATTERNS);
      free(text);
      break;
    }
    struct override_set one = {0};
    const char *t1 = text;
    if (override_compile(&one, &t1, 1, 0, err, sizeof err)) {
      err_at(L, c, "%s: %s", ip, err);
      free(text);
      continue;
    }
    override_release(&one);
    pats[np++] = text;
  }
  if (maxq > 0 || np > 0) {
    char err[300];
    if (!override_compile(&r->overrides, (const char *const *)pats, np, maxq, err, sizeof err))
      r->checks.overrides = &r->overrides;
  }
  for (int i = 0; i < np; i++) free(pats[i]);
}

static void parse_evaluation(struct ld *L, yaml_node_t *n) {
  struct recipe_evaluation *e = &L->r->evaluation;
  e->early_stop = 1;
  e->wave = 1;
  if (!n || check_map(L, n, "evaluation", k_evaluation)) return;
  yaml_node_t *v;
  if ((v = map_get(L, n, "early_stop"))) get_bool(L, v, "evaluation.early_stop", &e->early_stop);
  if ((v = map_get(L, n, "wave")))
    get_intv(L, v, "evaluation.wave", 1, ACCEPT_MAX_SAMPLES, &e->wave);
  if ((v = map_get(L, n, "batch_judge"))) get_bool(L, v, "evaluation.batch_judge", &e->batch_judge);
}

static const char *const k_finalize[] = {"threshold", "shingle", "ngram",   "against",
                                         "fields",    "remove",  "quality", NULL};
static const char *const k_finalize_quality[] = {"model", "endpoint", NULL};

/* finalize.quality: true (the quality role), or {model: ROLE | MODEL, endpoint: NAME}. */
static void parse_finalize_quality(struct ld *L, yaml_node_t *n) {
  struct recipe_finalize *f = &L->r->finalize;
  const struct recipe_role *q = &L->r->roles[RECIPE_ROLE_QUALITY];
  if (n->type == YAML_SCALAR_NODE) {
    if (get_bool(L, n, "finalize.quality", &f->quality) || !f->quality) return;
  } else if (check_map(L, n, "finalize.quality", k_finalize_quality)) {
    return;
  } else {
    f->quality = 1;
  }
  if (!q->present || !q->model) {
    err_at(L, n,
           "finalize.quality: the pass uses the quality role's prompt; the recipe has no "
           "roles.quality");
    f->quality = 0;
    return;
  }
  xset_str(&f->quality_endpoint, q->endpoint);
  xset_str(&f->quality_model, q->model);
  if (n->type != YAML_MAPPING_NODE) return;
  yaml_node_t *v;
  char *model = NULL, *ep = NULL;
  if ((v = map_get(L, n, "model")) && !get_str(L, v, "finalize.quality.model", 0, &model)) {
    int role = -1;
    for (int i = 0; i < RECIPE_N_ROLES; i++)
      if (!strcmp(model, recipe_role_name((enum recipe_role_id)i))) role = i;
    if (role >= 0 && !L->r->roles[role].present)
      err_at(L, v, "finalize.quality.model: the recipe has no roles.%s", model);
    else if (role >= 0) {
      xset_str(&f->quality_endpoint, L->r->roles[role].endpoint);
      xset_str(&f->quality_model, L->r->roles[role].model);
    } else {
      xset_str(&f->quality_model, model);
    }
  }
  if ((v = map_get(L, n, "endpoint")) && !get_str(L, v, "finalize.quality.endpoint", 0, &ep)) {
    if (recipe_find_endpoint(L->r, ep) < 0)
      err_at(L, v, "finalize.quality.endpoint: no endpoint named '%s'", ep);
    else xset_str(&f->quality_endpoint, ep);
  }
  free(model);
  free(ep);
}

/* A list of non-empty strings at n (path names it in errors) into *out / *count. */
static void get_str_list(struct ld *L, yaml_node_t *n, const char *path, char ***out, int *count) {
  if (n->type != YAML_SEQUENCE_NODE) {
    err_at(L, n, "%s: expected a list, got %s", path, kind_name(n));
    return;
  }
  int idx = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, idx++) {
    yaml_node_t *c = node(L, *it);
    char ip[96], *text = NULL;
    snprintf(ip, sizeof ip, "%s[%d]", path, idx);
    if (!c || get_str(L, c, ip, 0, &text)) continue;
    *out = xrealloc(*out, (size_t)(*count + 1) * sizeof **out);
    (*out)[(*count)++] = text;
  }
}

static void parse_finalize(struct ld *L, yaml_node_t *n) {
  struct recipe_finalize *f = &L->r->finalize;
  f->threshold = 0.7;
  f->shingle = 3;
  f->ngram = 13;
  f->remove = 1;
  if (!n || check_map(L, n, "finalize", k_finalize)) return;
  f->present = 1;
  f->line = NLINE(n);
  f->col = NCOL(n);
  yaml_node_t *v;
  if ((v = map_get(L, n, "threshold")))
    get_num(L, v, "finalize.threshold", 0.01, 1.0, &f->threshold);
  if ((v = map_get(L, n, "shingle"))) get_intv(L, v, "finalize.shingle", 1, 64, &f->shingle);
  if ((v = map_get(L, n, "ngram"))) get_intv(L, v, "finalize.ngram", 1, 1000, &f->ngram);
  if ((v = map_get(L, n, "remove"))) get_bool(L, v, "finalize.remove", &f->remove);
  if ((v = map_get(L, n, "quality"))) parse_finalize_quality(L, v);
  if ((v = map_get(L, n, "fields")))
    get_str_list(L, v, "finalize.fields", &f->fields, &f->n_fields);
  if ((v = map_get(L, n, "against"))) {
    int before = f->n_against;
    get_str_list(L, v, "finalize.against", &f->against, &f->n_against);
    for (int i = before; i < f->n_against; i++) {
      yaml_node_t *c = node(L, v->data.sequence.items.start[i - before]);
      if (access(f->against[i], R_OK))
        err_at(L, c ? c : v, "finalize.against[%d]: cannot read '%s': %s", i - before,
               f->against[i], strerror(errno));
    }
  }
}

static const char *const k_analysis[] = {"every", NULL};

static void parse_analysis(struct ld *L, yaml_node_t *n) {
  struct recipe_analysis *a = &L->r->analysis;
  if (!n || check_map(L, n, "analysis", k_analysis)) return;
  a->line = NLINE(n);
  a->col = NCOL(n);
  yaml_node_t *v;
  if ((v = map_get(L, n, "every"))) get_intv(L, v, "analysis.every", 1, 1000000, &a->every);
  else err_at(L, n, "analysis: missing required key 'every'");
}

static void parse_checks(struct ld *L, yaml_node_t *n) {
  struct cand_checks *c = &L->r->checks;
  cand_checks_default(c); /* the defaults live with the checks themselves */
  L->r->verifiable_matcher = SCORE_AUTO;
  if (!n || check_map(L, n, "checks", k_checks)) return;
  yaml_node_t *v;
  if ((v = map_get(L, n, "rubric_preset"))) { /* first: the keys below override it */
    static const char *const v_rubric[] = {"positive", "signed", NULL};
    int p = get_enum(L, v, "checks.rubric_preset", v_rubric);
    if (p >= 0) cand_rubric_preset(v_rubric[p], c);
  }
  if ((v = map_get(L, n, "positive_min")))
    get_intv(L, v, "checks.positive_min", 0, 1000, &c->positive_min);
  if ((v = map_get(L, n, "positive_max")))
    get_intv(L, v, "checks.positive_max", 0, 1000, &c->positive_max);
  if ((v = map_get(L, n, "negative_min")))
    get_intv(L, v, "checks.negative_min", 0, 1000, &c->negative_min);
  if ((v = map_get(L, n, "negative_max")))
    get_intv(L, v, "checks.negative_max", 0, 1000, &c->negative_max);
  if ((v = map_get(L, n, "reasoning_skills")))
    get_bool(L, v, "checks.reasoning_skills", &c->reasoning_skills);
  if (!c->signed_rubric && (c->negative_min > 0 || c->negative_max > 0))
    err_at(L, n,
           "checks: negative_min/negative_max need signed rubrics (rubric_preset: signed); a "
           "positive rubric has no negative criteria");
  if (c->positive_max > 0 && c->positive_min > c->positive_max)
    err_at(L, n, "checks: positive_min (%d) is larger than positive_max (%d)", c->positive_min,
           c->positive_max);
  if (c->negative_max > 0 && c->negative_min > c->negative_max)
    err_at(L, n, "checks: negative_min (%d) is larger than negative_max (%d)", c->negative_min,
           c->negative_max);
  parse_overrides(L, n);
  if ((v = map_get(L, n, "max_context_chars")))
    get_intv(L, v, "checks.max_context_chars", 0, INT_MAX, &c->max_context_chars);
  if ((v = map_get(L, n, "min_context_chars")))
    get_intv(L, v, "checks.min_context_chars", 0, INT_MAX, &c->min_context_chars);
  if ((v = map_get(L, n, "leakage_ngram")))
    get_intv(L, v, "checks.leakage_ngram", 1, 100, &c->leakage_ngram);
  if ((v = map_get(L, n, "leakage_max_overlap")))
    get_num(L, v, "checks.leakage_max_overlap", 0, 1, &c->leakage_max_overlap);
  if ((v = map_get(L, n, "rubric_min")))
    get_intv(L, v, "checks.rubric_min", 1, 1000, &c->rubric_min);
  if ((v = map_get(L, n, "rubric_max")))
    get_intv(L, v, "checks.rubric_max", 1, 1000, &c->rubric_max);
  if ((v = map_get(L, n, "max_weight")))
    get_intv(L, v, "checks.max_weight", 1, 1000, &c->max_weight);
  if ((v = map_get(L, n, "dedup"))) get_bool(L, v, "checks.dedup", &c->dedup);
  if ((v = map_get(L, n, "verifiable_matcher"))) {
    int m = get_enum(L, v, "checks.verifiable_matcher", v_matcher);
    if (m == 5) m = SCORE_NORMALISED; /* "normalized" */
    if (m >= 0) L->r->verifiable_matcher = (enum score_matcher)m;
  }
  if (c->rubric_min > c->rubric_max)
    err_at(L, n, "checks: rubric_min (%d) is larger than rubric_max (%d)", c->rubric_min,
           c->rubric_max);
  if (c->max_context_chars && c->min_context_chars > c->max_context_chars)
    err_at(L, n, "checks: min_context_chars (%d) is larger than max_context_chars (%d)",
           c->min_context_chars, c->max_context_chars);
}

static void parse_baselines(struct ld *L, yaml_node_t *n) {
  struct bl_params *b = &L->r->baselines;
  bl_params_default(b); /* the defaults live with the filters themselves */
  if (!n || check_map(L, n, "baselines", k_baselines)) return;
  yaml_node_t *v;
  /* BL_MAX_K is what the run accepts; the filter's samples share the solvers'
   * per-candidate cap. */
  _Static_assert(BL_MAX_K <= ACCEPT_MAX_SAMPLES, "cot k must fit the per-candidate sample arrays");
  if ((v = map_get(L, n, "k"))) get_intv(L, v, "baselines.k", 1, BL_MAX_K, &b->k);
  if ((v = map_get(L, n, "rip_threshold")))
    get_num(L, v, "baselines.rip_threshold", 0, 1, &b->rip_threshold);
  if ((v = map_get(L, n, "ac_min_share"))) {
    double x = 0;
    if (!get_num(L, v, "baselines.ac_min_share", 0, 1, &x)) {
      if (x > 0) b->ac_min_share = x;
      else
        err_at(L, v, "baselines.ac_min_share: must be greater than 0 (a share in (0, 1]), got %g",
               x);
    }
  }
}

/* ---- prompt files ------------------------------------------------------- */

/* Resolve a prompt path: absolute as is; else the recipe's folder, then the
 * default prompts folder. Returns an owned existing path, or NULL with the
 * places tried in tried. */
static char *resolve_prompt(struct ld *L, const char *rel, char *tried, size_t n) {
  tried[0] = '\0';
  if (rel[0] == '/') {
    snprintf(tried, n, "%s", rel);
    return is_file(rel) ? xstrdup(rel) : NULL;
  }
  const char *dirs[2] = {L->r->dir, L->r->prompts_dir};
  size_t off = 0;
  for (int i = 0; i < 2; i++) {
    if (!dirs[i]) continue;
    char *p = fs_join(dirs[i], rel);
    if (is_file(p)) return p;
    off += (size_t)snprintf(tried + off, off < n ? n - off : 0, "%s%s", off ? ", " : "", p);
    free(p);
  }
  return NULL;
}

/* Read and compile one prompt file into pr. 0, or (after reporting) fs_read_all's
 * AD_EIO / AD_ETOOBIG, or the template compiler's code. */
static int load_prompt_file(struct ld *L, struct recipe_prompt *pr, const char *path, int whole,
                            int line, int col, const char *what) {
  size_t len = 0;
  int rc = fs_read_all(path, RECIPE_MAX_PROMPT_FILE, &pr->text, &len);
  if (rc) {
    err_pos(L, line, col, "%s: cannot read prompt file '%s': %s", what, path,
            rc == AD_ETOOBIG ? "larger than 1 MiB" : strerror(errno));
    return rc;
  }
  /* A prompt that is empty or not text would make every call of the role useless. */
  size_t at;
  int tc = jx_text_check(pr->text, len, &at);
  if (tc) {
    if (tc == JX_TEXT_EMPTY) err_pos(L, line, col, "%s: prompt file '%s' is empty", what, path);
    else
      err_pos(L, line, col, "%s: prompt file '%s' %s at byte %zu", what, path, jx_text_problem(tc),
              at);
    free(pr->text);
    pr->text = NULL;
    return AD_EPARSE;
  }
  pr->path = xstrdup(path);
  pr->len = len;
  sha256_hex(pr->text, len, pr->sha256);
  char e[1024];
  if (whole) rc = tpl_compile(pr->text, len, path, 1, &pr->tpl.user, e, sizeof e);
  else rc = tpl_prompt_compile(pr->text, len, path, &pr->tpl, e, sizeof e);
  if (rc) add_msg(L, xasprintf("%s (prompt of %s)", e, what));
  return rc;
}

static void load_prompts(struct ld *L) {
  struct recipe *r = L->r;
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    struct recipe_role *ro = &r->roles[i];
    if (!ro->present) continue;
    char what[64], tried[2048];
    snprintf(what, sizeof what, "roles.%s.prompt", role_names[i]);
    yaml_node_t *pn = L->prompt_nodes[i], *rn = L->role_nodes[i];
    int line = pn ? NLINE(pn) : rn ? NLINE(rn) : 0, col = pn ? NCOL(pn) : rn ? NCOL(rn) : 0;
    if (L->prompt_rel[i]) {
      char *p = resolve_prompt(L, L->prompt_rel[i], tried, sizeof tried);
      if (!p) {
        err_pos(L, line, col, "%s: prompt file '%s' not found (looked for: %s)", what,
                L->prompt_rel[i], tried);
      } else {
        load_prompt_file(L, &ro->prompt, p, 0, line, col, what);
        free(p);
      }
    } else {
      const char *def = recipe_default_prompt_file((enum recipe_role_id)i, r->task);
      if (r->task == CAND_TASK_RUBRIC && r->checks.signed_rubric &&
          (i == RECIPE_ROLE_CHALLENGER || i == RECIPE_ROLE_JUDGE))
        def = i == RECIPE_ROLE_JUDGE ? "judge-rubric-signed.md" : "challenger-rubric-signed.md";
      char *p = r->prompts_dir ? fs_join(r->prompts_dir, def) : NULL;
      if (!p || !is_file(p)) {
        err_pos(L, line, col,
                "%s: no prompt given and the default prompt file '%s' was not found (%s); set "
                "AUTODATA_PROMPTS to the prompts folder or give roles.%s.prompt",
                what, def, r->prompts_dir ? r->prompts_dir : "no default prompts folder found",
                role_names[i]);
      } else {
        load_prompt_file(L, &ro->prompt, p, 0, line, col, what);
      }
      free(p);
    }
    if (L->sysprompt_rel[i]) {
      snprintf(what, sizeof what, "roles.%s.system_prompt", role_names[i]);
      pn = L->sysprompt_nodes[i];
      char *p = resolve_prompt(L, L->sysprompt_rel[i], tried, sizeof tried);
      if (!p)
        err_at(L, pn, "%s: prompt file '%s' not found (looked for: %s)", what, L->sysprompt_rel[i],
               tried);
      else load_prompt_file(L, &ro->system_prompt, p, 1, NLINE(pn), NCOL(pn), what);
      free(p);
    }
    /* every variable the prompt uses must be one the role is given: checked now,
       before any call, not at the first render */
    if (ro->prompt.tpl.user && (!L->sysprompt_rel[i] || ro->system_prompt.tpl.user)) {
      char e[1024];
      if (recipe_check_prompt(r, (enum recipe_role_id)i, &ro->prompt.tpl,
                              ro->system_prompt.tpl.user, e, sizeof e))
        add_msg(L, xstrdup(e));
    }
  }
}

/* The batched judge's prompt (evaluation.batch_judge): judge-batch-<task>.md from the
 * prompts folder, with the judge's variables. */
static void load_batch_prompt(struct ld *L, yaml_node_t *root) {
  struct recipe *r = L->r;
  if (!r->evaluation.batch_judge || !r->roles[RECIPE_ROLE_JUDGE].present) return;
  const char *def = r->task == CAND_TASK_VERIFIABLE ? "judge-batch-verifiable.md"
                                                    : "judge-batch-rubric.md";
  yaml_node_t *n = map_get(L, root, "evaluation");
  int line = n ? NLINE(n) : 0, col = n ? NCOL(n) : 0;
  char *p = r->prompts_dir ? fs_join(r->prompts_dir, def) : NULL;
  if (!p || !is_file(p)) {
    err_pos(L, line, col,
            "evaluation.batch_judge: the batched judge's prompt file '%s' was not found (%s); "
            "set AUTODATA_PROMPTS to the prompts folder",
            def, r->prompts_dir ? r->prompts_dir : "no default prompts folder found");
  } else if (!load_prompt_file(L, &r->judge_batch, p, 0, line, col, "evaluation.batch_judge")) {
    char e[1024];
    if (recipe_check_prompt(r, RECIPE_ROLE_JUDGE, &r->judge_batch.tpl, NULL, e, sizeof e))
      add_msg(L, xstrdup(e));
  }
  free(p);
}

/* ---- load --------------------------------------------------------------- */

static void free_prompt(struct recipe_prompt *p) {
  free(p->path);
  free(p->text);
  tpl_prompt_release(&p->tpl);
}

void recipe_free(struct recipe *r) {
  if (!r) return;
  for (int i = 0; i < r->finalize.n_against; i++) free(r->finalize.against[i]);
  free(r->finalize.against);
  for (int i = 0; i < r->finalize.n_fields; i++) free(r->finalize.fields[i]);
  free(r->finalize.fields);
  free(r->finalize.quality_endpoint);
  free(r->finalize.quality_model);
  override_release(&r->overrides);
  free(r->path);
  free(r->dir);
  free(r->prompts_dir);
  free(r->name);
  free(r->method);
  free(r->goal);
  free((char *)r->sources.path);
  free((char *)r->sources.id_field);
  free((char *)r->sources.title_field);
  free((char *)r->sources.text_field);
  for (int i = 0; i < r->n_endpoints; i++) {
    struct recipe_endpoint *e = &r->endpoints[i];
    free(e->name);
    for (int k = 0; k < e->n_urls; k++) free(e->base_urls[k]);
    free(e->api_key_env);
    for (int k = 0; k < e->n_headers; k++) {
      free(e->headers[k]);
      free(e->headers_raw[k]);
    }
    json_decref(e->extra_body);
    for (int k = 0; k < e->n_prices; k++) free(e->prices[k].model);
    free(e->prices);
  }
  free(r->endpoints);
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    struct recipe_role *ro = &r->roles[i];
    free(ro->endpoint);
    free(ro->model);
    free_prompt(&ro->prompt);
    free_prompt(&ro->system_prompt);
    if (i == 0) free_prompt(&r->judge_batch);
    json_decref(ro->extra);
  }
  struct recipe_opt_role *orl[] = {&r->optimize.analyzer, &r->optimize.implementer};
  for (int i = 0; i < 2; i++) {
    free(orl[i]->endpoint);
    free(orl[i]->model);
    free(orl[i]->prompt);
  }
  free(r->output_folder);
  free(r->store_path);
  json_decref(r->env_refs);
  free(r);
}

static int valid_recipe_name(const char *s) {
  if (!strcmp(s, ".") || !strcmp(s, "..")) return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') return 0;
  }
  return 1;
}

const char *recipe_opt_objective_name(enum recipe_opt_objective o) {
  return (unsigned)o < 3 ? v_opt_objective[o] : "?";
}
const char *recipe_opt_strategy_name(enum recipe_opt_strategy s) {
  return (unsigned)s < 2 ? v_opt_strategy[s] : "?";
}

static void opt_defaults(struct recipe_optimize *o) {
  memset(o, 0, sizeof *o);
  o->iterations = 30;
  o->parallel = 1;
  o->train = 20;
  o->val = 30;
  o->test = 100;
  o->minibatch = 5;
  o->temperature = 0.1;
  o->editable[RECIPE_ROLE_CHALLENGER] = 1;
  o->editable[RECIPE_ROLE_ORCHESTRATOR] = 1;
  o->editable[RECIPE_ROLE_QUALITY] = 1;
  o->max_prompt_chars = 20000;
  o->analyzer.endpoint_index = o->implementer.endpoint_index = -1;
  o->analyzer.temperature = o->implementer.temperature = 0.7;
  o->analyzer.max_tokens = o->implementer.max_tokens = 8192;
}

static void parse_opt_role(struct ld *L, struct recipe_opt_role *ro, yaml_node_t *n,
                           const char *path) {
  char fp[96];
#define FP(key) (snprintf(fp, sizeof fp, "%s.%s", path, key), fp)
  ro->line = NLINE(n);
  ro->col = NCOL(n);
  if (check_map(L, n, path, k_opt_role)) return;
  ro->present = 1;
  yaml_node_t *v;
  if ((v = map_get(L, n, "endpoint"))) {
    if (!get_str(L, v, FP("endpoint"), 0, &ro->endpoint)) {
      ro->endpoint_index = recipe_find_endpoint(L->r, ro->endpoint);
      if (ro->endpoint_index < 0)
        err_at(L, v, "%s: endpoint '%s' is not declared", fp, ro->endpoint);
    }
  } else {
    err_at(L, n, "missing required key 'endpoint' in %s", path);
  }
  if ((v = map_get(L, n, "model"))) get_str(L, v, FP("model"), 0, &ro->model);
  else err_at(L, n, "missing required key 'model' in %s", path);
  if ((v = map_get(L, n, "prompt"))) get_str(L, v, FP("prompt"), 0, &ro->prompt);
  if ((v = map_get(L, n, "temperature"))) get_num(L, v, FP("temperature"), 0, 10, &ro->temperature);
  if ((v = map_get(L, n, "max_tokens")))
    get_intv(L, v, FP("max_tokens"), 0, 100000000, &ro->max_tokens);
#undef FP
}

static void parse_optimize(struct ld *L, yaml_node_t *n) {
  struct recipe_optimize *o = &L->r->optimize;
  opt_defaults(o);
  if (!n || check_map(L, n, "optimize", k_optimize)) return;
  o->present = 1;
  o->line = NLINE(n);
  o->col = NCOL(n);
  yaml_node_t *v;
  if ((v = map_get(L, n, "iterations")))
    get_intv(L, v, "optimize.iterations", 0, 100000, &o->iterations);
  if ((v = map_get(L, n, "parallel"))) get_intv(L, v, "optimize.parallel", 1, 64, &o->parallel);
  if ((v = map_get(L, n, "train"))) get_intv(L, v, "optimize.train", 1, 1000000, &o->train);
  if ((v = map_get(L, n, "val"))) get_intv(L, v, "optimize.val", 1, 1000000, &o->val);
  if ((v = map_get(L, n, "test"))) get_intv(L, v, "optimize.test", 1, 1000000, &o->test);
  if ((v = map_get(L, n, "minibatch")))
    get_intv(L, v, "optimize.minibatch", 1, 1000000, &o->minibatch);
  if ((v = map_get(L, n, "temperature")))
    get_num(L, v, "optimize.temperature", 1e-6, 1000, &o->temperature);
  if ((v = map_get(L, n, "strategy"))) {
    int x = get_enum(L, v, "optimize.strategy", v_opt_strategy);
    if (x >= 0) o->strategy = (enum recipe_opt_strategy)x;
  }
  if ((v = map_get(L, n, "minibatch_gate")))
    get_bool(L, v, "optimize.minibatch_gate", &o->minibatch_gate);
  if ((v = map_get(L, n, "merge_every")))
    get_intv(L, v, "optimize.merge_every", 0, 100000, &o->merge_every);
  if ((v = map_get(L, n, "objective"))) {
    int x = get_enum(L, v, "optimize.objective", v_opt_objective);
    if (x >= 0) o->objective = (enum recipe_opt_objective)x;
  }
  if ((v = map_get(L, n, "max_prompt_chars")))
    get_intv(L, v, "optimize.max_prompt_chars", 100, 1000000, &o->max_prompt_chars);
  if ((v = map_get(L, n, "editable"))) {
    if (v->type != YAML_SEQUENCE_NODE) {
      err_at(L, v, "optimize.editable: expected a list of role names, got %s", kind_name(v));
    } else {
      memset(o->editable, 0, sizeof o->editable);
      for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
           it++) {
        yaml_node_t *e = node(L, *it);
        if (!e) continue;
        int x = get_enum(L, e, "optimize.editable[]", k_roles);
        if (x < 0) continue;
        if (x == RECIPE_ROLE_WEAK || x == RECIPE_ROLE_STRONG || x == RECIPE_ROLE_JUDGE)
          err_at(L, e,
                 "optimize.editable: '%s' is part of the locked evaluator (solvers and judge "
                 "never change); editable roles: orchestrator, challenger, quality",
                 k_roles[x]);
        else o->editable[x] = 1;
      }
    }
  }
  if ((v = map_get(L, n, "budgets")) && !check_map(L, v, "optimize.budgets", k_opt_budgets)) {
    yaml_node_t *b;
    long long x;
    if ((b = map_get(L, v, "max_calls")) &&
        !get_int(L, b, "optimize.budgets.max_calls", 0, LLONG_MAX, &x))
      o->max_calls = x;
    if ((b = map_get(L, v, "max_tokens")) &&
        !get_int(L, b, "optimize.budgets.max_tokens", 0, LLONG_MAX, &x))
      o->max_tokens = x;
    if ((b = map_get(L, v, "max_cost")))
      get_num(L, b, "optimize.budgets.max_cost", 0, 1e12, &o->max_cost);
  }
  if ((v = map_get(L, n, "analyzer"))) parse_opt_role(L, &o->analyzer, v, "optimize.analyzer");
  if ((v = map_get(L, n, "implementer")))
    parse_opt_role(L, &o->implementer, v, "optimize.implementer");
  if (o->minibatch > o->train)
    err_at(L, n, "optimize: minibatch (%d) is larger than the train split (%d)", o->minibatch,
           o->train);
}

static void parse_root(struct ld *L, yaml_node_t *root) {
  struct recipe *r = L->r;
  yaml_node_t *v;
  if (check_map(L, root, "the recipe", k_top)) {
    parse_accept(L, NULL);
    parse_budgets(L, NULL);
    parse_evaluation(L, NULL);
    parse_checks(L, NULL);
    parse_baselines(L, NULL);
    parse_optimize(L, NULL);
    parse_finalize(L, NULL);
    return;
  }
  if ((v = map_get(L, root, "name"))) {
    if (!get_str(L, v, "name", 0, &r->name) && !valid_recipe_name(r->name)) {
      err_at(L, v,
             "name: must not contain '/', '\\' or control characters (it names the output folder)");
    }
  } else {
    err_at(L, root, "missing required key 'name' in the recipe");
  }
  if ((v = map_get(L, root, "task"))) {
    int t = get_enum(L, v, "task", v_task);
    if (t >= 0) r->task = (enum cand_task)t;
  }
  long long x;
  if ((v = map_get(L, root, "seed")) && !get_int(L, v, "seed", LLONG_MIN, LLONG_MAX, &x))
    r->seed = x;
  r->sources.shuffle_seed = (uint64_t)r->seed;
  if ((v = map_get(L, root, "method"))) {
    const char *const *names = L->opts ? L->opts->methods : NULL;
    if (names) {
      int m = get_enum(L, v, "method", names);
      if (m >= 0) xset_str(&r->method, names[m]);
    } else {
      get_str(L, v, "method", 0, &r->method);
    }
  }
  if ((v = map_get(L, root, "goal"))) get_str(L, v, "goal", 1, &r->goal);
  if ((v = map_get(L, root, "concurrency")))
    get_intv(L, v, "concurrency", 1, 1000000, &r->concurrency);
  if ((v = map_get(L, root, "sources"))) parse_sources(L, v);
  else err_at(L, root, "missing required key 'sources' in the recipe");
  parse_endpoints(L, map_get(L, root, "endpoints"));
  parse_roles(L, map_get(L, root, "roles"), root);
  parse_accept(L, map_get(L, root, "accept"));
  parse_budgets(L, map_get(L, root, "budgets"));
  parse_evaluation(L, map_get(L, root, "evaluation"));
  parse_checks(L, map_get(L, root, "checks"));
  parse_baselines(L, map_get(L, root, "baselines"));
  parse_optimize(L, map_get(L, root, "optimize"));
  parse_finalize(L, map_get(L, root, "finalize"));
  parse_analysis(L, map_get(L, root, "analysis"));
  if ((v = map_get(L, root, "output")) && !check_map(L, v, "output", k_output)) {
    yaml_node_t *f;
    if ((f = map_get(L, v, "folder"))) get_str(L, f, "output.folder", 0, &r->output_folder);
    if ((f = map_get(L, v, "store"))) get_str(L, f, "output.store", 0, &r->store_path);
  }
}

static void recipe_init_defaults(struct recipe *r) {
  r->seed = 1;
  r->task = CAND_TASK_RUBRIC;
  r->method = xstrdup("agentic");
  r->goal = xstrdup("");
  r->concurrency = 64;
  src_options_init(&r->sources);
  r->sources.path = NULL;
  r->sources.id_field = xstrdup("id");
  r->sources.title_field = xstrdup("title");
  r->sources.text_field = xstrdup("text");
  r->env_refs = json_array();
  role_defaults(r);
}

int recipe_load_mem(const char *text, size_t n, const char *virtual_path,
                    const struct recipe_load_opts *opts, struct recipe **out,
                    struct recipe_diag *diag) {
  int rc = 0;
  struct ld L;
  memset(&L, 0, sizeof L);
  yaml_parser_t parser;
  int parser_ok = 0, doc_ok = 0;
  *out = NULL;
  if (!virtual_path) virtual_path = "recipe.yaml";
  L.file = virtual_path;
  L.diag = diag;
  L.opts = opts;
  L.json_budget = RECIPE_JSON_BUDGET;
  struct recipe *r = L.r = xcalloc(1, sizeof *r);
  recipe_init_defaults(r);
  r->path = xstrdup(virtual_path);
  r->dir = fs_dirname(virtual_path);
  sha256_hex(text, n, r->sha256);
  if (!(opts && opts->skip_prompts)) {
    if (opts && opts->prompts_dir) {
      r->prompts_dir = xstrdup(opts->prompts_dir);
    } else {
      char pd[PATH_MAX];
      if (!recipe_default_prompts_dir(pd, sizeof pd)) r->prompts_dir = xstrdup(pd);
    }
  }
  if (!yaml_parser_initialize(&parser)) { /* libyaml's own allocation failed */
    rc = AD_ENOMEM;
    goto cleanup;
  }
  parser_ok = 1;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
  if (!yaml_parser_load(&parser, &L.doc)) {
    const char *prob = parser.problem ? parser.problem : "syntax error";
    if (parser.context)
      err_pos(&L, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
              "YAML syntax error: %s %s (line %d)", prob, parser.context,
              (int)parser.context_mark.line + 1);
    else
      err_pos(&L, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
              "YAML syntax error: %s", prob);
    rc = AD_EPARSE;
    goto cleanup;
  }
  doc_ok = 1;
  yaml_node_t *root = yaml_document_get_root_node(&L.doc);
  if (!root || is_null(root)) {
    err_pos(&L, 1, 1, "the recipe is empty (expected a mapping with name, sources, roles, ...)");
    rc = AD_EINVAL;
    goto cleanup;
  }
  parse_root(&L, root);
  /* Defaults that depend on other fields. */
  if (!strcmp(r->accept_preset, "math-exact")) {
    if (!L.explicit_samples[RECIPE_ROLE_WEAK]) r->roles[RECIPE_ROLE_WEAK].samples = 4;
    if (!L.explicit_samples[RECIPE_ROLE_STRONG]) r->roles[RECIPE_ROLE_STRONG].samples = 4;
  }
  if (!r->output_folder && r->name) r->output_folder = xasprintf("runs/%s", r->name);
  if (!r->store_path && r->output_folder) r->store_path = fs_join(r->output_folder, "store.db");
  if (!(opts && opts->skip_prompts)) { /* runs after errors too: report them all */
    load_prompts(&L);
    load_batch_prompt(&L, root);
  }
  if (L.nerr) rc = AD_EINVAL;
cleanup:
  if (rc == AD_ENOMEM && L.nerr == 0) err_pos(&L, 0, 0, "out of memory");
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    free(L.prompt_rel[i]);
    free(L.sysprompt_rel[i]);
  }
  if (doc_ok) yaml_document_delete(&L.doc);
  if (parser_ok) yaml_parser_delete(&parser);
  if (rc) {
    recipe_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int recipe_load(const char *path, const struct recipe_load_opts *opts, struct recipe **out,
                struct recipe_diag *diag) {
  char *text = NULL;
  size_t len = 0;
  *out = NULL;
  int rc = fs_read_all(path, RECIPE_MAX_FILE, &text, &len);
  if (rc) {
    int e = errno;
    char *msg = rc == AD_ETOOBIG ? xasprintf("%s: recipe file larger than %u bytes", path,
                                             (unsigned)RECIPE_MAX_FILE)
                                 : xasprintf("%s: cannot read recipe: %s", path,
                                             rc == AD_EIO ? strerror(e) : ad_strerror(rc));
    if (diag && diag->n < RECIPE_MAX_ERRORS) diag->msgs[diag->n++] = msg;
    else free(msg);
    return rc;
  }
  rc = recipe_load_mem(text, len, path, opts, out, diag);
  free(text);
  return rc;
}

/* ---- queries ------------------------------------------------------------ */

int recipe_find_endpoint(const struct recipe *r, const char *name) {
  for (int i = 0; i < r->n_endpoints; i++)
    if (r->endpoints[i].name && !strcmp(r->endpoints[i].name, name)) return i;
  return -1;
}

int recipe_endpoint_config(const struct recipe *r, int i, struct llm_endpoint_config *out) {
  if (!r || i < 0 || i >= r->n_endpoints) return AD_EINVAL;
  const struct recipe_endpoint *e = &r->endpoints[i];
  llm_endpoint_config_init(out);
  out->name = e->name;
  for (int k = 0; k < e->n_urls; k++) out->base_urls[k] = e->base_urls[k];
  out->n_urls = e->n_urls;
  out->api_key_env = e->api_key_env;
  for (int k = 0; k < e->n_headers; k++) out->headers[k] = e->headers[k];
  out->n_headers = e->n_headers;
  out->max_inflight = e->max_inflight;
  out->requests_per_min = e->requests_per_min;
  out->tokens_per_min = e->tokens_per_min;
  out->connect_timeout_ms = e->connect_timeout_ms;
  out->request_timeout_ms = e->request_timeout_ms;
  out->max_retries = e->max_retries;
  out->backoff_base_ms = 500;
  out->backoff_max_ms = 30000;
  out->adaptive = 1;
  out->extra_body = e->extra_body;
  return 0;
}

int recipe_price(const struct recipe *r, int i, const char *model, double *in_per_mtok,
                 double *out_per_mtok) {
  *in_per_mtok = *out_per_mtok = 0;
  if (!r || i < 0 || i >= r->n_endpoints || !model) return AD_ENOTFOUND;
  const struct recipe_endpoint *e = &r->endpoints[i];
  for (int k = 0; k < e->n_prices; k++) {
    if (!strcmp(e->prices[k].model, model)) {
      *in_per_mtok = e->prices[k].input_per_mtok;
      *out_per_mtok = e->prices[k].output_per_mtok;
      return 0;
    }
  }
  return AD_ENOTFOUND;
}

/* ---- canonical JSON ----------------------------------------------------- */

static json_t *jstr(const char *s) { return s ? jx_string_lossy(s, strlen(s)) : json_null(); }

static json_t *prompt_json(const struct recipe_prompt *p) {
  if (!p->path) return json_null();
  return json_pack("{s:o, s:s}", "path", jstr(p->path), "sha256", p->sha256);
}

json_t *recipe_to_json(const struct recipe *r) {
  json_t *root = json_object();
  json_object_set_new(root, "name", jstr(r->name));
  json_object_set_new(root, "task", json_string(cand_task_name(r->task)));
  json_object_set_new(root, "seed", json_integer(r->seed));
  json_object_set_new(root, "method", jstr(r->method));
  json_object_set_new(root, "goal", jstr(r->goal));
  json_object_set_new(root, "concurrency", json_integer(r->concurrency));
  json_object_set_new(root, "recipe_sha256", json_string(r->sha256));

  const struct src_options *s = &r->sources;
  json_object_set_new(root, "sources",
                      json_pack("{s:o, s:s, s:o, s:o, s:o, s:I, s:I, s:b, s:I}", "path",
                                jstr(s->path), "format", src_format_name(s->format), "id_field",
                                jstr(s->id_field), "title_field", jstr(s->title_field),
                                "text_field", jstr(s->text_field), "max_chars",
                                (json_int_t)s->max_chars, "limit", (json_int_t)s->limit, "shuffle",
                                s->shuffle, "shuffle_seed", (json_int_t)s->shuffle_seed));
  if (s->on_invalid) /* only when not the default: older runs keep their configuration */
    json_object_set_new(json_object_get(root, "sources"), "on_invalid",
                        json_string(v_on_invalid[s->on_invalid]));

  json_t *eps = json_object();
  for (int i = 0; i < r->n_endpoints; i++) {
    const struct recipe_endpoint *e = &r->endpoints[i];
    json_t *urls = json_array(), *hdrs = json_array(), *prices = json_object();
    for (int k = 0; k < e->n_urls; k++) json_array_append_new(urls, jstr(e->base_urls[k]));
    for (int k = 0; k < e->n_headers; k++) json_array_append_new(hdrs, jstr(e->headers_raw[k]));
    for (int k = 0; k < e->n_prices; k++)
      json_object_set_new(prices, e->prices[k].model,
                          json_pack("{s:f, s:f}", "input_per_mtok", e->prices[k].input_per_mtok,
                                    "output_per_mtok", e->prices[k].output_per_mtok));
    json_t *ej = json_pack(
        "{s:o, s:o, s:o, s:i, s:f, s:f, s:i, s:i, s:i, s:O, s:o, s:o, s:b}", "base_urls", urls,
        "api_key_env", jstr(e->api_key_env), "headers", hdrs, "max_inflight", e->max_inflight,
        "requests_per_min", e->requests_per_min, "tokens_per_min", e->tokens_per_min,
        "connect_timeout_ms", e->connect_timeout_ms, "request_timeout_ms", e->request_timeout_ms,
        "max_retries", e->max_retries, "extra_body", e->extra_body ? e->extra_body : json_null(),
        "json_schema",
        e->json_schema == RECIPE_SCHEMA_BASIC ? json_string("basic") : json_boolean(e->json_schema),
        "prices", prices, "builtin", e->builtin);
    if (ej) json_object_set_new(eps, e->name, ej);
  }
  json_object_set_new(root, "endpoints", eps);

  json_t *roles = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const struct recipe_role *ro = &r->roles[i];
    if (!ro->present) {
      if (i < RECIPE_ROLE_EXTRACTOR) /* a role added later is left out when absent, so */
        json_object_set_new(roles, role_names[i], json_null()); /* identities stay equal */
      continue;
    }
    json_t *rj = json_pack(
        "{s:o, s:o, s:o, s:o, s:f, s:o, s:o, s:O, s:i}", "endpoint", jstr(ro->endpoint), "model",
        jstr(ro->model), "prompt", prompt_json(&ro->prompt), "system_prompt",
        prompt_json(&ro->system_prompt), "temperature", ro->temperature, "top_p",
        ro->top_p == LLM_UNSET ? json_null() : json_real(ro->top_p), "max_tokens",
        ro->max_tokens > 0 ? json_integer(ro->max_tokens) : json_null(), "extra",
        ro->extra ? ro->extra : json_null(), "samples", ro->samples);
    if (rj && ro->parallel > 1) /* only when set: the default leaves identities as they were */
      json_object_set_new(rj, "parallel", json_integer(ro->parallel));
    if (rj) json_object_set_new(roles, role_names[i], rj);
  }
  json_object_set_new(root, "roles", roles);

  json_t *bounds = json_array();
  for (int i = 0; i < r->accept.n; i++) {
    char b[128];
    accept_bound_format(&r->accept.bounds[i], b, sizeof b);
    json_array_append_new(bounds, json_string(b));
  }
  json_object_set_new(root, "accept",
                      json_pack("{s:o, s:o, s:b, s:f}", "preset",
                                r->accept_preset[0] ? json_string(r->accept_preset) : json_null(),
                                "bounds", bounds, "short_circuit", r->accept.short_circuit,
                                "pass_threshold", r->accept.pass_threshold));
  const struct recipe_budgets *b = &r->budgets;
  json_object_set_new(root, "budgets",
                      json_pack("{s:i, s:i, s:I, s:I, s:f, s:i}", "rounds_per_source",
                                b->rounds_per_source, "examples_per_source", b->examples_per_source,
                                "max_calls", (json_int_t)b->max_calls, "max_tokens",
                                (json_int_t)b->max_tokens, "max_cost", b->max_cost, "agent_steps",
                                b->agent_steps));
  json_object_set_new(root, "evaluation",
                      json_pack("{s:b, s:i, s:b}", "early_stop", r->evaluation.early_stop, "wave",
                                r->evaluation.wave, "batch_judge", r->evaluation.batch_judge));
  if (r->finalize.present) {
    const struct recipe_finalize *f = &r->finalize;
    json_t *ag = json_array(), *fl = json_array();
    for (int i = 0; i < f->n_against; i++) json_array_append_new(ag, json_string(f->against[i]));
    for (int i = 0; i < f->n_fields; i++) json_array_append_new(fl, json_string(f->fields[i]));
    json_object_set_new(root, "finalize",
                        json_pack("{s:f, s:i, s:i, s:o, s:o, s:b}", "threshold", f->threshold,
                                  "shingle", f->shingle, "ngram", f->ngram, "against", ag, "fields",
                                  fl, "remove", f->remove));
    if (f->quality) /* only when set: older identities stay equal */
      json_object_set_new(
          json_object_get(root, "finalize"), "quality",
          json_pack("{s:s, s:s}", "endpoint", f->quality_endpoint, "model", f->quality_model));
  }
  if (r->analysis.every > 0) /* only when set: older identities stay equal */
    json_object_set_new(root, "analysis", json_pack("{s:i}", "every", r->analysis.every));
  const struct cand_checks *c = &r->checks;
  json_object_set_new(
      root, "checks",
      json_pack("{s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:b, s:s}", "max_context_chars",
                c->max_context_chars, "min_context_chars", c->min_context_chars, "leakage_ngram",
                c->leakage_ngram, "leakage_max_overlap", c->leakage_max_overlap, "rubric_min",
                c->rubric_min, "rubric_max", c->rubric_max, "max_weight", c->max_weight, "dedup",
                c->dedup, "verifiable_matcher", score_matcher_name(r->verifiable_matcher)));
  if (c->overrides) { /* only when set: older identities stay equal */
    json_t *pats = json_array();
    for (int i = 0; i < c->overrides->n; i++)
      json_array_append_new(pats, json_string(c->overrides->src[i]));
    json_object_set_new(json_object_get(root, "checks"), "overrides",
                        json_pack("{s:i, s:o}", "max_question_chars",
                                  c->overrides->max_question_chars, "reject_patterns", pats));
  }
  struct cand_checks dc;
  cand_checks_default(&dc);
  if (c->signed_rubric || c->reasoning_skills || c->positive_min != dc.positive_min ||
      c->positive_max != dc.positive_max) /* only when set: older identities stay equal */
    json_object_set_new(json_object_get(root, "checks"), "rubric_kinds",
                        json_pack("{s:s, s:i, s:i, s:i, s:i, s:b}", "preset",
                                  c->signed_rubric ? "signed" : "positive", "positive_min",
                                  c->positive_min, "positive_max", c->positive_max, "negative_min",
                                  c->negative_min, "negative_max", c->negative_max,
                                  "reasoning_skills", c->reasoning_skills));
  const struct bl_params *bl = &r->baselines;
  json_object_set_new(root, "baselines",
                      json_pack("{s:i, s:f, s:f}", "k", bl->k, "rip_threshold", bl->rip_threshold,
                                "ac_min_share", bl->ac_min_share));
  json_object_set_new(
      root, "output",
      json_pack("{s:o, s:o}", "folder", jstr(r->output_folder), "store", jstr(r->store_path)));
  return root;
}

/* ---- identity ----------------------------------------------------------- */

/* Copy the members keys[] (NULL-terminated) of src that exist into a new object. */
static json_t *pick(const json_t *src, const char *const *keys) {
  json_t *o = json_object();
  for (int i = 0; keys[i]; i++) {
    json_t *v = json_object_get(src, keys[i]);
    if (v) json_object_set(o, keys[i], v);
  }
  return o;
}

json_t *recipe_identity_of(const json_t *full) {
  static const char *const id_top[] = {"task", "seed", "method", "goal", NULL};
  static const char *const k_src[] = {"format",    "id_field", "title_field",  "text_field",
                                      "max_chars", "shuffle",  "shuffle_seed", NULL};
  static const char *const k_ep[] = {"headers", "extra_body", "json_schema", NULL};
  static const char *const id_role[] = {"endpoint", "model",   "temperature", "top_p", "max_tokens",
                                        "extra",    "samples", "parallel",    NULL};
  if (!json_is_object(full)) return NULL;
  json_t *id = pick(full, id_top);
  json_object_set_new(id, "sources", pick(json_object_get(full, "sources"), k_src));
  const json_t *roles = json_object_get(full, "roles"), *eps = json_object_get(full, "endpoints");
  json_t *ro = json_object(), *eo = json_object();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)roles, k, v) {
    if (!json_is_object(v)) {
      json_object_set_new(ro, k, json_null()); /* the role is not used */
      continue;
    }
    json_t *r = pick(v, id_role);
    static const char *const k_prompts[] = {"prompt", "system_prompt"};
    for (int i = 0; i < 2; i++) { /* a prompt is its text: its hash, not where it lies */
      const json_t *p = json_object_get(v, k_prompts[i]);
      const json_t *sha = json_object_get(p, "sha256");
      json_object_set(r, k_prompts[i], sha ? (json_t *)sha : json_null());
    }
    json_object_set_new(ro, k, r);
    const char *en = jx_str(v, "endpoint");
    const json_t *e = en ? json_object_get(eps, en) : NULL;
    if (e && !json_object_get(eo, en)) json_object_set_new(eo, en, pick(e, k_ep));
  }
  json_object_set_new(id, "roles", ro);
  json_object_set_new(id, "endpoints", eo);
  json_t *acc = json_object_get(full, "accept");
  if (acc) json_object_set(id, "accept", acc);
  json_t *chk = json_object_get(full, "checks");
  if (chk) json_object_set(id, "checks", chk);
  /* batched judging grades differently (one call for several answers): part of the
   * identity when on, absent otherwise (so earlier runs' identities are unchanged) */
  if (json_is_true(json_object_get(json_object_get(full, "evaluation"), "batch_judge")))
    json_object_set_new(id, "batch_judge", json_true());
  /* dataset notes change what the loop asks (absent otherwise: earlier identities unchanged) */
  json_t *an = json_object_get(full, "analysis");
  if (an) json_object_set(id, "analysis", an);
  return id;
}

json_t *recipe_identity(const struct recipe *r) {
  json_t *full = recipe_to_json(r);
  json_t *id = recipe_identity_of(full);
  json_decref(full);
  return id;
}

int recipe_identity_sha256(const json_t *identity, char out[65]) {
  char *d = jx_dump_canonical(identity);
  if (!d) return AD_EINVAL;
  sha256_hex(d, strlen(d), out);
  free(d);
  return 0;
}

/* v as a short compact JSON excerpt. */
static void value_excerpt(const json_t *v, char *out, size_t n) {
  if (!v) {
    snprintf(out, n, "(not recorded)");
    return;
  }
  char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!d) {
    snprintf(out, n, "?");
    return;
  }
  size_t l = strlen(d);
  if (l + 1 > n && n > 4) snprintf(out, n, "%.*s...", (int)(n - 4), d);
  else snprintf(out, n, "%s", d);
  free(d);
}

/* Does the recipe field f (as recorded in env_refs) lie at or under path, or path under f? */
static int field_matches(const char *f, const char *path) {
  size_t fl = strlen(f), pl = strlen(path);
  size_t m = fl < pl ? fl : pl;
  if (strncmp(f, path, m)) return 0;
  if (fl == pl) return 1;
  char c = fl > pl ? f[m] : path[m];
  return c == '.' || c == '[';
}

struct diffst {
  struct buf *b;
  const json_t *env_refs;
  int n, shown, rc;
  int skip_unrecorded; /* a member absent from old is not a difference */
};

static void diff_emit(struct diffst *d, const char *path, const json_t *a, const json_t *b) {
  d->n++;
  if (d->shown >= 8 || d->rc) return;
  d->shown++;
  char x[100], y[100];
  value_excerpt(a, x, sizeof x);
  value_excerpt(b, y, sizeof y);
  if (d->b->len) d->rc = buf_puts(d->b, "; ");
  if (!d->rc) d->rc = buf_printf(d->b, "%s %s -> %s", path, x, y);
  size_t i;
  const json_t *e;
  int first = 1;
  json_array_foreach(d->env_refs, i, e) {
    const char *f = jx_str(e, "field"), *var = jx_str(e, "variable");
    if (!f || !var || !field_matches(f, path) || d->rc) continue;
    d->rc = buf_printf(
        d->b, "%s$%s%s", first ? " (set through " : ", ", var,
        !strcmp(jx_str(e, "from") ? jx_str(e, "from") : "", "default") ? " (unset: default)" : "");
    first = 0;
  }
  if (!first && !d->rc) d->rc = buf_puts(d->b, ")");
}

static void diff_walk(struct diffst *d, const char *path, const json_t *a, const json_t *b) {
  if (a && b && json_equal((json_t *)a, (json_t *)b)) return;
  if (!a && d->skip_unrecorded) return;
  if (json_is_object(a) && json_is_object(b)) {
    /* sorted union of the keys, for a stable message */
    json_t *keys = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) json_object_set_new(keys, k, json_true());
    json_object_foreach((json_t *)b, k, v) json_object_set_new(keys, k, json_true());
    size_t n = json_object_size(keys), i = 0;
    const char **ks = xcalloc(n ? n : 1, sizeof *ks);
    json_object_foreach(keys, k, v) ks[i++] = k;
    for (size_t x = 1; x < n; x++)
      for (size_t y = x; y > 0 && strcmp(ks[y - 1], ks[y]) > 0; y--) {
        const char *t = ks[y];
        ks[y] = ks[y - 1];
        ks[y - 1] = t;
      }
    for (i = 0; i < n; i++) {
      char *sub = *path ? xasprintf("%s.%s", path, ks[i]) : xstrdup(ks[i]);
      diff_walk(d, sub, json_object_get(a, ks[i]), json_object_get(b, ks[i]));
      free(sub);
    }
    free(ks);
    json_decref(keys);
    return;
  }
  diff_emit(d, *path ? path : "(configuration)", a, b);
}

int recipe_identity_diff(const json_t *old, const json_t *neu, const json_t *env_refs,
                         int skip_unrecorded, struct buf *out) {
  struct diffst d = {out, env_refs, 0, 0, 0, skip_unrecorded};
  diff_walk(&d, "", old, neu);
  if (!d.rc && d.n > d.shown) d.rc = buf_printf(out, "; and %d more", d.n - d.shown);
  return d.rc ? d.rc : d.n;
}

/* ---- prompt variables by role ------------------------------------------- */

static const char *const vars_orchestrator[] = {"task",  "verifiable", "goal", "source_title",
                                                "round", "history",    NULL};
static const char *const vars_challenger[] = {
    "task",         "verifiable",   "goal",         "source_title", "source_text", "round",
    "feedback",     "instructions", "max_weight",   "rubric_min",   "rubric_max",  "positive_min",
    "positive_max", "negative_min", "negative_max", "extraction",   NULL};
static const char *const vars_quality[] = {
    "task",           "verifiable", "goal",       "source_title", "source_text",
    "candidate_json", "max_weight", "rubric_min", "rubric_max",   NULL};
static const char *const vars_extractor[] = {"task",         "verifiable",  "goal",
                                             "source_title", "source_text", NULL};
static const char *const vars_loop_judge[] = {"task",         "verifiable",  "goal",
                                              "source_title", "source_text", "candidate_json",
                                              "evaluation",   NULL};
static const char *const vars_solver[] = {"task",    "verifiable", "goal",
                                          "context", "question",   NULL};
static const char *const vars_judge_rubric[] = {"task",     "verifiable", "goal",      "question",
                                                "response", "rubric",     "responses", NULL};
static const char *const vars_judge_verifiable[] = {
    "task", "verifiable", "goal", "question", "response", "reference_answer", "responses", NULL};

const char *const *recipe_role_vars(enum recipe_role_id role, enum cand_task task) {
  static const char *const none[] = {NULL};
  switch (role) {
  case RECIPE_ROLE_ORCHESTRATOR: return vars_orchestrator;
  case RECIPE_ROLE_CHALLENGER: return vars_challenger;
  case RECIPE_ROLE_QUALITY: return vars_quality;
  case RECIPE_ROLE_EXTRACTOR: return vars_extractor;
  case RECIPE_ROLE_LOOP_JUDGE: return vars_loop_judge;
  case RECIPE_ROLE_WEAK:
  case RECIPE_ROLE_STRONG: return vars_solver;
  case RECIPE_ROLE_JUDGE:
    return task == CAND_TASK_VERIFIABLE ? vars_judge_verifiable : vars_judge_rubric;
  default: return none;
  }
}

int recipe_role_has_var(enum recipe_role_id role, enum cand_task task, const char *name) {
  const char *const *v = recipe_role_vars(role, task);
  for (int i = 0; v[i]; i++)
    if (!strcmp(v[i], name)) return 1;
  return 0;
}

json_t *recipe_role_filter_vars(enum recipe_role_id role, enum cand_task task, const json_t *vars) {
  json_t *o = json_object();
  const char *const *v = recipe_role_vars(role, task);
  for (int i = 0; v[i]; i++) {
    json_t *x = json_object_get(vars, v[i]);
    if (x) json_object_set(o, v[i], x);
  }
  return o;
}

/* A sample value of the right shape for variable name (sections over it are visited). */
static json_t *sample_value(const struct recipe *r, const char *name) {
  if (!strcmp(name, "verifiable")) return json_boolean(r->task == CAND_TASK_VERIFIABLE);
  if (!strcmp(name, "round")) return json_integer(1);
  if (!strcmp(name, "max_weight")) return json_integer(r->checks.max_weight);
  if (!strcmp(name, "rubric_min")) return json_integer(r->checks.rubric_min);
  if (!strcmp(name, "rubric_max")) return json_integer(r->checks.rubric_max);
  if (!strcmp(name, "positive_min")) return json_integer(r->checks.positive_min);
  if (!strcmp(name, "positive_max")) return json_integer(r->checks.positive_max);
  if (!strcmp(name, "negative_min")) return json_integer(r->checks.negative_min);
  if (!strcmp(name, "negative_max")) return json_integer(r->checks.negative_max);
  if (!strcmp(name, "task")) return json_string(cand_task_name(r->task));
  if (!strcmp(name, "rubric"))
    return json_pack("[{s:i, s:i, s:s, s:s, s:b}]", "number", 1, "weight", 1, "criterion", "x",
                     "category", "positive", "negative", 0);
  if (!strcmp(name, "responses")) return json_pack("[{s:i, s:s}]", "number", 1, "response", "x");
  return json_string("x");
}

int recipe_check_prompt(const struct recipe *r, enum recipe_role_id role,
                        const struct tpl_prompt *p, const tpl *system, char *err, size_t errlen) {
  const char *const *names = recipe_role_vars(role, r->task);
  json_t *vars = json_object();
  for (int i = 0; names[i]; i++) json_object_set_new(vars, names[i], sample_value(r, names[i]));
  json_t *msgs = NULL;
  char e[768];
  int rc = tpl_prompt_render(p, system, vars, TPL_CHECK, &msgs, e, sizeof e);
  json_decref(msgs);
  json_decref(vars);
  if (!rc) return 0;
  if (rc != AD_ENOTFOUND) {
    ad_set_err(err, errlen, "%s", e);
    return rc;
  }
  char list[512];
  name_list(names, list, sizeof list);
  /* a variable another role gets: say it is withheld from this one */
  const char *q = strchr(e, '\'');
  char var[128] = "";
  if (q) snprintf(var, sizeof var, "%.*s", (int)strcspn(q + 1, "'.\n"), q + 1);
  int elsewhere = 0;
  for (int k = 0; k < RECIPE_N_ROLES && *var; k++)
    elsewhere |= recipe_role_has_var((enum recipe_role_id)k, r->task, var);
  ad_set_err(err, errlen, "%s%s; the %s prompt may use: %s (docs/templates.md)", e,
             elsewhere ? " (not given to this role)" : "", role_names[role], list);
  return rc;
}
