/* world_notes.c - the sim models' reading of a dataset note, and the sim challenger's
 * favourite question (world_notes.h). */
#include "sim/world_notes.h"

#include <string.h>
#include <strings.h>

#define OVERUSED "Over-represented question types:"
#define STEER "steer away from this wording:"

const char *const SIM_HABIT_TYPE = "quantitative reasoning";
/* About 130 words before the fact names: two of them on different sources share most of
 * their word 3-grams (docs/sim.md). */
const char *const SIM_HABIT_FMT =
    "Using the values the study reports under its main protocol, and taking into account the "
    "controls, the replicates and the way the authors pooled their runs before comparing "
    "conditions, reason step by step about which of the measured quantities dominates the "
    "overall response of the system, and which of them matter only at the margin. State the "
    "reported value of every quantity you rely on before you draw any conclusion, say how the "
    "quantities interact with one another, and explain how these values together decide which "
    "condition dominates the outcome of the study and why the alternative readings of the same "
    "evidence fall short. A complete answer names every quantity listed here, gives its value "
    "exactly as the study reports it, and ties each value to the conclusion: %s.";

int sim_habit_asked_before(const char *text) {
  /* its first 100 characters: longer than a note's quote of a question's first words */
  return strstr(text,
                "Using the values the study reports under its main protocol, and taking "
                "into account the controls") != NULL;
}

static size_t line_len(const char *p) { return strcspn(p, "\n"); }

int sim_notes_overused(const char *text, char types[][SIM_NOTES_TYPE_LEN], int max) {
  int n = 0;
  for (const char *p = text; n < max && (p = strstr(p, OVERUSED)) != NULL;) {
    p += strlen(OVERUSED);
    const char *end = p + line_len(p);
    while (p < end && n < max) {
      while (p < end && (*p == ' ' || *p == ';')) p++;
      size_t k = 0;
      while (p + k < end && p[k] != '(' && p[k] != ';' && p[k] != '.') k++;
      size_t t = k;
      while (t > 0 && p[t - 1] == ' ') t--;
      if (t > 0 && t < SIM_NOTES_TYPE_LEN) {
        memcpy(types[n], p, t);
        types[n][t] = 0;
        if (!sim_notes_listed(types, n, types[n])) n++;
      }
      p += k;
      if (p < end && *p == '(') p += strcspn(p, ")");
      if (p < end && *p == '.') break; /* the line's advice follows */
      if (p < end) p++;
    }
  }
  return n;
}

int sim_notes_listed(char types[][SIM_NOTES_TYPE_LEN], int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcasecmp(types[i], name)) return 1;
  return 0;
}

int sim_notes_steer_away(const char *text, const char *start) {
  for (const char *p = text; (p = strstr(p, STEER)) != NULL;) {
    p += strlen(STEER);
    const char *end = p + line_len(p);
    for (const char *q = p; q < end && (q = memchr(q, '"', (size_t)(end - q))) != NULL;) {
      const char *e = memchr(q + 1, '"', (size_t)(end - q - 1));
      if (!e) break;
      size_t k = (size_t)(e - q - 1);
      if (k >= 4 && !strncmp(e - 4, " ...", 4)) k -= 4;
      if (k > 0 && !strncasecmp(start, q + 1, k)) return 1;
      q = e + 1;
    }
  }
  return 0;
}

int sim_notes_relay(const char *text, struct buf *out) {
  static const char *const heads[] = {"- " OVERUSED, "- Near-duplicate questions, " STEER};
  int rc = 0;
  for (int h = 0; h < 2 && !rc; h++) {
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, heads[h])) != NULL; p++) last = p;
    if (last) rc = buf_printf(out, " %.*s", (int)line_len(last + 2), last + 2);
  }
  return rc;
}
