/* method.c - the table of generation methods (method.h). */
#include "loop/method.h"

#include <string.h>

const struct method_ops *const method_table[] = {
    &method_agentic,
    &method_self_instruct,
    &method_cot_self_instruct,
    NULL,
};

const struct method_ops *method_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; method_table[i]; i++)
    if (!strcmp(method_table[i]->name, name)) return method_table[i];
  return NULL;
}

const char *method_names(void) { return "agentic, self-instruct or cot-self-instruct"; }

json_t *method_identity(const struct method_ops *m, const struct bl_params *filter) {
  if (m->identity) return m->identity(m, filter);
  return json_pack("{s:s}", "name", m->name);
}
