/* facts.c - sim fact naming, difficulty, values and scanning. */
#include "sim/facts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"

/* Salts keep the difficulty and the value independent hashes of the name. */
#define DIFFICULTY_SALT 0x5a17d1ff1c017ull
#define VALUE_SALT 0xfac7a1e5ull

void sim_fact_name(unsigned id, char out[SIM_FACT_NAME_LEN + 2]) {
  snprintf(out, SIM_FACT_NAME_LEN + 2, "F-%04x", id & 0xffffu);
}

double sim_fact_difficulty(const char *name) {
  size_t n = strnlen(name, SIM_FACT_NAME_LEN);
  return (double)(hash64_seed(name, n, DIFFICULTY_SALT) >> 11) * 0x1.0p-53;
}

long long sim_fact_value(const char *name) {
  size_t n = strnlen(name, SIM_FACT_NAME_LEN);
  return 10 + (long long)(hash64_seed(name, n, VALUE_SALT) % 90);
}

double sim_recall_prob(double skill, double difficulty) {
  return (1.0 - SIM_RECALL_SLIP) / (1.0 + exp(-SIM_RECALL_SLOPE * (skill - difficulty)));
}

static int is_lhex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
static int is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t'; }

int sim_fact_name_at(const char *text, size_t len, size_t i) {
  if (i + SIM_FACT_NAME_LEN > len) return 0;
  if (text[i] != 'F' || text[i + 1] != '-') return 0;
  if (i > 0 && is_alnum(text[i - 1])) return 0;
  for (size_t k = 2; k < SIM_FACT_NAME_LEN; k++)
    if (!is_lhex(text[i + k])) return 0;
  if (i + SIM_FACT_NAME_LEN < len && is_alnum(text[i + SIM_FACT_NAME_LEN])) return 0;
  return 1;
}

int sim_fact_statement_at(const char *text, size_t len, size_t i, int forms, long long *value,
                          size_t *end) {
  if (!sim_fact_name_at(text, len, i)) return 0;
  size_t p = i + SIM_FACT_NAME_LEN;
  while (p < len && is_space(text[p])) p++;
  if (p >= len) return 0;
  if (text[p] == '=' && (forms & SIM_STATE_EQ)) {
    p++;
  } else if (text[p] == ':' && (forms & SIM_STATE_COLON)) {
    p++;
  } else if ((forms & SIM_STATE_IS) && p + 2 < len && text[p] == 'i' && text[p + 1] == 's' &&
             is_space(text[p + 2])) {
    p += 2;
  } else {
    return 0;
  }
  while (p < len && is_space(text[p])) p++;
  int neg = 0;
  if (p < len && text[p] == '-') {
    neg = 1;
    p++;
  }
  size_t d0 = p;
  long long v = 0;
  while (p < len && is_digit(text[p]) && p - d0 < 15) v = v * 10 + (text[p++] - '0');
  if (p == d0) return 0;
  if (p < len && is_digit(text[p])) return 0; /* absurdly long number */
  if (p + 1 < len && (text[p] == '.' || text[p] == ',') && is_digit(text[p + 1])) return 0;
  if (p < len && is_alnum(text[p])) return 0; /* "17kg", "17th": not a plain integer */
  *value = neg ? -v : v;
  if (end) *end = p;
  return 1;
}

size_t sim_facts_scan(const char *text, size_t len, int forms, struct sim_fact *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i + SIM_FACT_NAME_LEN <= len && n < max; i++) {
    if (text[i] != 'F') continue;
    long long v;
    size_t end;
    if (!sim_fact_statement_at(text, len, i, forms, &v, &end)) continue;
    int dup = 0;
    for (size_t k = 0; k < n && !dup; k++) dup = !memcmp(out[k].name, text + i, SIM_FACT_NAME_LEN);
    if (!dup) {
      memcpy(out[n].name, text + i, SIM_FACT_NAME_LEN);
      out[n].name[SIM_FACT_NAME_LEN] = '\0';
      out[n].value = v;
      out[n].difficulty = sim_fact_difficulty(out[n].name);
      n++;
    }
    i = end - 1;
  }
  return n;
}

size_t sim_fact_names_scan(const char *text, size_t len, char (*out)[SIM_FACT_NAME_LEN + 2],
                           size_t max) {
  size_t n = 0;
  for (size_t i = 0; i + SIM_FACT_NAME_LEN <= len && n < max; i++) {
    if (text[i] != 'F' || !sim_fact_name_at(text, len, i)) continue;
    int dup = 0;
    for (size_t k = 0; k < n && !dup; k++) dup = !memcmp(out[k], text + i, SIM_FACT_NAME_LEN);
    if (!dup) {
      memcpy(out[n], text + i, SIM_FACT_NAME_LEN);
      out[n][SIM_FACT_NAME_LEN] = '\0';
      n++;
    }
    i += SIM_FACT_NAME_LEN - 1;
  }
  return n;
}

int sim_fact_stated(const char *text, size_t len, const char *name, int forms, long long *value) {
  if (strnlen(name, SIM_FACT_NAME_LEN) < SIM_FACT_NAME_LEN) return 0;
  for (size_t i = 0; i + SIM_FACT_NAME_LEN <= len; i++) {
    if (text[i] != 'F' || memcmp(text + i, name, SIM_FACT_NAME_LEN)) continue;
    if (sim_fact_statement_at(text, len, i, forms, value, NULL)) return 1;
  }
  return 0;
}
