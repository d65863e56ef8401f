/* fuzz_template.c - libFuzzer target: the template engine on arbitrary bytes.
 * Input: optional JSON variables, then a line "---", then a prompt file. Without
 * the separator the whole input is the prompt and fixed variables are used. The
 * prompt is compiled (system/user split) and rendered strictly and leniently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prompt/template.h"

static const char *DEFAULT_VARS =
    "{\"question\":\"Q?\",\"n\":3,\"r\":0.125,\"t\":true,\"f\":false,\"z\":null,\"s\":\"\","
    "\"xs\":[1,\"two\",{\"k\":\"v\"},[3]],\"o\":{\"a\":{\"b\":[\"deep\"]}},"
    "\"rubric\":[{\"criterion\":\"c1\",\"weight\":5},{\"criterion\":\"c2\",\"weight\":2}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  const char *text = (const char *)data;
  size_t len = size;
  json_t *vars = NULL;
  const char *sep = memmem(text, len, "\n---\n", 5);
  if (sep) {
    vars = json_loadb(text, (size_t)(sep - text), 0, NULL);
    len -= (size_t)(sep + 5 - text);
    text = sep + 5;
  }
  if (!vars) vars = json_loads(DEFAULT_VARS, 0, NULL);
  struct tpl_prompt p;
  char err[512];
  if (tpl_prompt_compile(text, len, "fuzz.md", &p, err, sizeof err) == 0) {
    for (unsigned flags = 0; flags <= TPL_LENIENT; flags++) {
      json_t *msgs = NULL;
      if (tpl_prompt_render(&p, NULL, vars, flags, &msgs, err, sizeof err) == 0) {
        if (!json_is_array(msgs)) abort();
      } else if (!err[0]) {
        abort(); /* every failure explains itself */
      }
      json_decref(msgs);
    }
    json_t *names = tpl_variables(p.user);
    json_decref(names);
    tpl_prompt_release(&p);
  } else if (!err[0]) {
    abort();
  }
  json_decref(vars);
  return 0;
}
