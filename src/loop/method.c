/* method.c - the table of generation methods (method.h). */
#include "loop/method.h"

#include <stdio.h>
#include <string.h>

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
