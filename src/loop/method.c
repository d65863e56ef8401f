/* method.c - the table of generation methods (method.h). */
#include "loop/method.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/mem.h"

const struct method_ops *const method_table[] = {
    &method_agentic, &method_self_instruct, &method_cot_self_instruct, &method_agent, NULL,
};

const struct method_ops *method_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; method_table[i]; i++)
    if (!strcmp(method_table[i]->name, name)) return method_table[i];
  return NULL;
}

#define N_METHODS (sizeof method_table / sizeof *method_table - 1)

const char *const *method_name_list(void) {
  static const char *names[N_METHODS + 1];
  for (size_t i = 0; i < N_METHODS; i++) names[i] = method_table[i]->name;
  return names;
}

const char *method_names(void) {
  static char text[256];
  size_t len = 0;
  for (size_t i = 0; i < N_METHODS && len < sizeof text; i++) {
    const char *sep = i == 0 ? "" : i + 1 == N_METHODS ? " or " : ", ";
    int w = snprintf(text + len, sizeof text - len, "%s%s", sep, method_table[i]->name);
    if (w < 0) break;
    len += (size_t)w;
  }
  return text;
}

json_t *method_identity(const struct method_ops *m, const struct bl_params *filter) {
  if (m->identity) return m->identity(m, filter);
  return json_pack("{s:s}", "name", m->name);
}

int method_has_prompt(const struct method_ops *m, enum recipe_role_id role) {
  if (role == RECIPE_ROLE_CHALLENGER) return m->challenger_prompt != NULL;
  if (role == RECIPE_ROLE_ORCHESTRATOR) return m->orchestrator_prompt != NULL;
  return 0;
}

int method_prompt_load(const struct method_ops *m, const struct recipe *rc,
                       enum recipe_role_id role, struct method_prompt *pr, char *err,
                       size_t errlen) {
  char dir[4096];
  memset(pr, 0, sizeof *pr);
  if (!method_has_prompt(m, role)) {
    ad_set_err(err, errlen, "method %s has no %s prompt of its own", m->name,
               recipe_role_name(role));
    return AD_EINVAL;
  }
  if (rc->prompts_dir) snprintf(dir, sizeof dir, "%s", rc->prompts_dir);
  else if (recipe_default_prompts_dir(dir, sizeof dir)) {
    ad_set_err(err, errlen,
               "method %s: the default prompts folder was not found (set AUTODATA_PROMPTS)",
               m->name);
    return AD_ENOTFOUND;
  }
  if (role == RECIPE_ROLE_CHALLENGER)
    pr->path = xasprintf("%s/%s-%s.md", dir, m->challenger_prompt, cand_task_name(rc->task));
  else pr->path = xasprintf("%s/%s.md", dir, m->orchestrator_prompt);
  int rc_ = fs_read_all(pr->path, RECIPE_MAX_PROMPT_FILE, &pr->text, &pr->len);
  if (rc_) {
    ad_set_err(err, errlen, "method %s: cannot read its %s prompt %s: %s", m->name,
               recipe_role_name(role), pr->path,
               rc_ == AD_EIO ? strerror(errno) : ad_strerror(rc_));
    return rc_;
  }
  sha256_hex(pr->text, pr->len, pr->sha);
  rc_ = tpl_prompt_compile(pr->text, pr->len, pr->path, &pr->tpl, err, errlen);
  if (!rc_) rc_ = recipe_check_prompt(rc, role, &pr->tpl, NULL, err, errlen);
  return rc_;
}

void method_prompt_release(struct method_prompt *pr) {
  tpl_prompt_release(&pr->tpl);
  free(pr->path);
  free(pr->text);
  memset(pr, 0, sizeof *pr);
}
