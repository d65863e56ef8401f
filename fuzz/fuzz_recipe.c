/* fuzz_recipe.c - libFuzzer target: the recipe loader on arbitrary bytes.
 * Prompt files are not read (skip_prompts), variables come from a fixed table,
 * so the run touches no files and no environment. Any crash, leak, hang or
 * sanitizer report is a bug; errors are fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recipe/recipe.h"
#include "util/jsonx.h"

static const char *fuzz_env(void *ud, const char *name) {
  (void)ud;
  if (!strcmp(name, "A")) return "1";
  if (!strcmp(name, "B")) return "http://127.0.0.1:8000/v1";
  if (!strcmp(name, "E")) return "";
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  struct recipe_load_opts o = {0};
  o.skip_prompts = 1;
  o.getenv_fn = fuzz_env;
  struct recipe *r = NULL;
  struct recipe_diag d = {0};
  int rc = recipe_load_mem((const char *)data, size, "fuzz/recipe.yaml", &o, &r, &d);
  if (rc == 0) {
    json_t *j = recipe_to_json(r);
    char *s = jx_dump_canonical(j);
    free(s);
    json_decref(j);
    for (int i = 0; i < r->n_endpoints; i++) {
      struct llm_endpoint_config c;
      if (recipe_endpoint_config(r, i, &c)) abort();
    }
    recipe_free(r);
  } else if (r) {
    abort(); /* failure must not return a recipe */
  } else if (d.n == 0 && rc != AD_ENOMEM) {
    abort(); /* every failure explains itself */
  }
  recipe_diag_release(&d);
  return 0;
}
