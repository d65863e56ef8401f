/* world.c - placeholder until the sim world lands: no model is a world model yet. */
#include "sim/world.h"

int sim_world_answer(const json_t *request, char **content, int64_t *prompt_tokens,
                     int64_t *completion_tokens, char *err, size_t errlen) {
  (void)request; (void)content; (void)prompt_tokens; (void)completion_tokens; (void)err; (void)errlen;
  return 0;
}
