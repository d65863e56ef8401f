/* lock.c - the locked evaluator and the splits (lock.h). */
#include "optimize/lock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"
#include "prompt/template.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

void opt_variant_sha(const json_t *prompts, char out[65]) {
  char *c = jx_dump_canonical(prompts);
  sha256_hex(c, strlen(c), out);
  free(c);
}

static int role_of(const char *name) {
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (!strcmp(name, recipe_role_name((enum recipe_role_id)i))) return i;
  return -1;
}

/* The variables both parts of a compiled prompt use, as an object name -> true. */
static json_t *used_vars(const struct tpl_prompt *p) {
  json_t *o = json_object();
  const tpl *parts[2] = {p->system, p->user};
  for (int k = 0; k < 2; k++) {
    if (!parts[k]) continue;
    json_t *a = tpl_variables(parts[k]);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) json_object_set_new(o, json_string_value(v), json_true());
    json_decref(a);
  }
  return o;
}

static int refuse(char *reason, size_t n, const char *fmt, ...) AD_PRINTF(3, 4);
static int refuse(char *reason, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (reason && n) vsnprintf(reason, n, fmt, ap);
  va_end(ap);
  return AD_EINVAL;
}

static void editable_list(const struct recipe *rc, char *out, size_t n) {
  size_t off = 0;
  out[0] = '\0';
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (rc->optimize.editable[i] && rc->roles[i].present)
      off += (size_t)snprintf(out + off, off < n ? n - off : 0, "%s%s", off ? ", " : "",
                              recipe_role_name((enum recipe_role_id)i));
}

/* One proposed text for role: compiles, only the role's variables, keeps the baseline's. */
static int check_text(const struct recipe *rc, int role, const char *text, const char *base,
                      char *reason, size_t n) {
  size_t chars = jx_utf8_chars(text);
  if (chars > (size_t)rc->optimize.max_prompt_chars)
    return refuse(reason, n, "the %s prompt has %zu characters, over the limit of %d",
                  recipe_role_name((enum recipe_role_id)role), chars,
                  rc->optimize.max_prompt_chars);
  struct tpl_prompt p = {0}, b = {0};
  char err[512];
  if (tpl_prompt_compile(text, strlen(text), recipe_role_name((enum recipe_role_id)role), &p, err,
                         sizeof err))
    return refuse(reason, n, "the %s prompt does not compile: %s",
                  recipe_role_name((enum recipe_role_id)role), err);
  int rc_ = 0;
  const struct recipe_role *ro = &rc->roles[role];
  if (recipe_check_prompt(rc, (enum recipe_role_id)role, &p, ro->system_prompt.tpl.user, err,
                          sizeof err)) {
    rc_ = refuse(reason, n, "%s", err);
  } else if (base && !tpl_prompt_compile(base, strlen(base), "baseline", &b, NULL, 0)) {
    json_t *need = used_vars(&b), *have = used_vars(&p);
    const char *k;
    json_t *v;
    json_object_foreach(need, k, v) if (!json_object_get(have, k)) {
      rc_ = refuse(reason, n,
                   "the %s prompt no longer uses {{%s}}, which the loop fills in (the baseline "
                   "prompt uses it)",
                   recipe_role_name((enum recipe_role_id)role), k);
      break;
    }
    json_decref(need);
    json_decref(have);
  }
  tpl_prompt_release(&p);
  tpl_prompt_release(&b);
  return rc_;
}

int opt_lock_check(const struct recipe *rc, const json_t *baseline, const json_t *parent,
                   const char *reply, json_t **mutant, char **rationale, char *reason,
                   size_t reason_len) {
  *mutant = NULL;
  *rationale = NULL;
  char err[256], list[128];
  editable_list(rc, list, sizeof list);
  static const char *const keys[] = {"prompts", NULL};
  json_t *o = extract_json_object(reply ? reply : "", keys, err, sizeof err);
  if (!o) return refuse(reason, reason_len, "the reply is not a JSON object: %s", err);
  int rc_ = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (strcmp(k, "prompts") && strcmp(k, "rationale")) {
      rc_ = refuse(reason, reason_len,
                   "the reply changes '%.60s'; only the texts of the editable prompts (%s) may "
                   "change",
                   k, list);
      goto out;
    }
  }
  json_t *pr = json_object_get(o, "prompts");
  if (!json_is_object(pr) || !json_object_size(pr)) {
    rc_ = refuse(reason, reason_len, "the reply has no \"prompts\" object with a prompt in it");
    goto out;
  }
  json_t *m = json_deep_copy(parent);
  json_object_foreach(pr, k, v) {
    int role = role_of(k);
    if (role < 0 || !rc->roles[role].present) {
      rc_ = refuse(reason, reason_len,
                   "the reply names '%.60s', which is not a prompt of this recipe", k);
    } else if (!rc->optimize.editable[role]) {
      rc_ = refuse(reason, reason_len,
                   "the reply edits the %s prompt, which is part of the locked evaluator "
                   "(editable: %s)",
                   k, list);
    } else if (!json_is_string(v)) {
      rc_ = refuse(reason, reason_len, "prompts.%s is not a string", k);
    } else {
      rc_ = check_text(rc, role, json_string_value(v),
                       json_string_value(json_object_get(baseline, k)), reason, reason_len);
    }
    if (rc_) break;
    json_object_set(m, k, v);
  }
  if (!rc_ && json_equal(m, (json_t *)parent))
    rc_ = refuse(reason, reason_len, "the proposal changes nothing");
  if (rc_) {
    json_decref(m);
    goto out;
  }
  *mutant = m;
  const char *why = jx_str(o, "rationale");
  *rationale = xstrdup(why ? why : "");
out:
  json_decref(o);
  return rc_;
}

int opt_split_draw(size_t n, uint64_t seed, int ntrain, int nval, int ntest, int *split, char *err,
                   size_t errlen) {
  size_t need = (size_t)ntrain + (size_t)nval + (size_t)ntest;
  if (n < need) {
    ad_set_err(err, errlen,
               "the corpus has %zu sources; the splits need %zu (train %d + val %d + test %d)", n,
               need, ntrain, nval, ntest);
    return AD_EINVAL;
  }
  size_t *order = xcalloc(n + 1, sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  struct rng r;
  rng_seed(&r, rng_derive(seed, "optimize|split"));
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rng_below(&r, i);
    size_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < n; i++) split[i] = -1;
  for (size_t i = 0; i < need; i++)
    split[order[i]] = i < (size_t)ntrain ? 0 : i < (size_t)(ntrain + nval) ? 1 : 2;
  free(order);
  return 0;
}
