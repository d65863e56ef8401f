/* fuzz_reply.c - libFuzzer target for llm_reply_parse() and llm_tool_calls_parse():
 * any bytes must give 0, AD_EPARSE or AD_EHTTP with a one-line, NUL-terminated message,
 * and never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct llm_reply r;
  char err[256];
  memset(err, 'x', sizeof err);
  int rc = llm_reply_parse((const char *)data, size, &r, err, sizeof err);
  if (rc != 0 && rc != AD_EPARSE && rc != AD_EHTTP && rc != AD_ENOMEM) abort();
  if (!memchr(err, 0, sizeof err) || strchr(err, '\n')) abort();
  if (rc == 0) {
    if (!r.content) abort();
    (void)strlen(r.content);
    if (r.reasoning_content) (void)strlen(r.reasoning_content);
    if (r.tool_calls && !json_is_array(r.tool_calls)) abort();
    struct llm_tool_call *calls;
    int n;
    memset(err, 'x', sizeof err);
    int trc = llm_tool_calls_parse(r.tool_calls, &calls, &n, err, sizeof err);
    if (trc != 0 && trc != AD_EPARSE) abort();
    if (trc && (calls || !memchr(err, 0, sizeof err))) abort();
    for (int i = 0; i < n; i++)
      if (!calls[i].id[0] || !calls[i].name[0] || strlen(calls[i].arguments) > LLM_MAX_TOOL_ARGS)
        abort();
    llm_tool_calls_free(calls, n);
    llm_reply_release(&r);
  } else if (r.content || r.tool_calls) {
    abort(); /* a failed parse leaves nothing to free */
  }
  return 0;
}
