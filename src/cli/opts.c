/* opts.c - the option layer on getopt_long (see opts.h). */
#include "cli/opts.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long returns OPTS_VAL0 + i for table entry i, and OPTS_VAL0 + n for
 * --help: values above any char, so they never mix with short options. */
#define OPTS_VAL0 0x1000

/* "usage: autodata <cmd> <synopsis>" without a newline. */
static void usage_head(const struct opts_cli *cli, FILE *f) {
  int has = cli->synopsis && *cli->synopsis;
  fprintf(f, "usage: autodata %s%s%s", cli->cmd, has ? " " : "", has ? cli->synopsis : "");
}

static void usage_line(const struct opts_cli *cli, FILE *f) {
  usage_head(cli, f);
  fprintf(f, "  (--help: all options)\n");
}

void opts_help(const struct opts_cli *cli, FILE *f) {
  usage_head(cli, f);
  fprintf(f, "\n\n");
  if (cli->about) fprintf(f, "%s\n\n", cli->about);
  /* The help column: after the longest "--name ARG", at most 24 wide. */
  int w = (int)strlen("-h, --help");
  for (const struct opts_spec *s = cli->opts; s->name; s++) {
    int len = 2 + (int)strlen(s->name) + (s->arg ? 1 + (int)strlen(s->arg) : 0);
    if (len > w) w = len;
  }
  w = w + 2 > 24 ? 24 : w + 2;
  for (const struct opts_spec *s = cli->opts; s->name; s++) {
    char head[128];
    snprintf(head, sizeof head, "--%s%s%s", s->name, s->arg ? " " : "", s->arg ? s->arg : "");
    if ((int)strlen(head) >= w) fprintf(f, "  %s\n%*s", head, w + 2, "");
    else fprintf(f, "  %-*s", w, head);
    for (const char *h = s->help ? s->help : ""; *h;) {
      const char *nl = strchr(h, '\n');
      int len = nl ? (int)(nl - h) : (int)strlen(h);
      fprintf(f, "%.*s\n", len, h);
      if (!nl) break;
      h = nl + 1;
      fprintf(f, "%*s", w + 2, "");
    }
    if (!s->help || !*s->help) fputc('\n', f);
  }
  fprintf(f, "  %-*s%s\n", w, "-h, --help", "print this help");
  if (cli->footer) fprintf(f, "\n%s\n", cli->footer);
}

int opts_usage_error(const struct opts_cli *cli, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "autodata %s: ", cli->cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  usage_line(cli, stderr);
  return AD_EINVAL;
}

void opts_begin(struct opts_parser *p, const struct opts_cli *cli, int argc, char **argv) {
  memset(p, 0, sizeof *p);
  p->cmd = cli->cmd;
  p->cli_ = cli;
  p->argc_ = argc;
  p->argv_ = argv;
  int n = 0;
  for (const struct opts_spec *s = cli->opts; s->name; s++, n++) {
    assert(n < OPTS_MAX && s->id > 0 && strlen(s->name) < sizeof p->flagbuf_ - 3);
    p->long_[n] = (struct option){s->name, s->arg ? required_argument : no_argument, NULL,
                                  OPTS_VAL0 + n};
  }
  p->n_ = n;
  p->long_[n] = (struct option){"help", no_argument, NULL, OPTS_VAL0 + n};
  p->long_[n + 1] = (struct option){0, 0, 0, 0};
  optind = 0; /* full reinitialisation (glibc and musl): forget any earlier parse */
  opterr = 0; /* the messages are ours */
}

static const char *spec_name(const struct opts_parser *p, int val) {
  int i = val - OPTS_VAL0;
  return i >= 0 && i <= p->n_ ? p->long_[i].name : NULL;
}

/* "--name" of an unknown or ambiguous long option (any "=value" dropped). */
static void bad_long(struct opts_parser *p, const char *a) {
  const char *name = a + 2;
  size_t len = strcspn(name, "=");
  int matches = 0;
  for (int i = 0; i <= p->n_; i++) matches += !strncmp(p->long_[i].name, name, len);
  if (len && matches > 1) {
    fprintf(stderr, "autodata %s: ambiguous option '--%.*s' (", p->cmd, (int)len, name);
    const char *sep = "";
    for (int i = 0; i <= p->n_; i++)
      if (!strncmp(p->long_[i].name, name, len)) {
        fprintf(stderr, "%s--%s", sep, p->long_[i].name);
        sep = ", ";
      }
    fprintf(stderr, ")\n");
  } else {
    fprintf(stderr, "autodata %s: unknown option '--%.*s'\n", p->cmd, (int)len, name);
  }
}

/* An unknown short option c: the argv element it came from, for the message
 * ("-bogus", not just "-b"); getopt has or has not stepped past it yet. */
static const char *short_arg(const struct opts_parser *p, int c) {
  for (int k = optind - 1; k <= optind; k++)
    if (k > 0 && k < p->argc_ && p->argv_[k][0] == '-' && p->argv_[k][1] == c) return p->argv_[k];
  return NULL;
}

int opts_next(struct opts_parser *p) {
  p->flag = NULL;
  p->val = NULL;
  int c = getopt_long(p->argc_, p->argv_, ":h", p->long_, NULL);
  if (c == -1) {
    p->pos = p->argv_ + optind;
    p->npos = p->argc_ - optind;
    return OPTS_DONE;
  }
  if (c == 'h' || c == OPTS_VAL0 + p->n_) {
    opts_help(p->cli_, stdout);
    return OPTS_HELP;
  }
  if (c >= OPTS_VAL0 && c < OPTS_VAL0 + p->n_) {
    snprintf(p->flagbuf_, sizeof p->flagbuf_, "--%s", spec_name(p, c));
    p->flag = p->flagbuf_;
    p->val = optarg;
    if (optarg && !*optarg) { /* `--out ""`: no option takes an empty value */
      fprintf(stderr, "autodata %s: %s needs a value, got an empty one\n", p->cmd, p->flag);
      usage_line(p->cli_, stderr);
      return AD_EINVAL;
    }
    return p->cli_->opts[c - OPTS_VAL0].id;
  }
  const char *name = spec_name(p, optopt);
  if (c == ':') {
    /* A missing value: only long options take one. */
    fprintf(stderr, "autodata %s: --%s needs a value\n", p->cmd, name ? name : "?");
  } else if (name) {
    fprintf(stderr, "autodata %s: --%s takes no value\n", p->cmd, name);
  } else if (optopt) {
    const char *a = short_arg(p, optopt);
    if (a) fprintf(stderr, "autodata %s: unknown option '%s'\n", p->cmd, a);
    else fprintf(stderr, "autodata %s: unknown option '-%c'\n", p->cmd, optopt);
  } else {
    const char *a = optind > 0 && optind <= p->argc_ ? p->argv_[optind - 1] : "?";
    if (!strncmp(a, "--", 2)) bad_long(p, a);
    else fprintf(stderr, "autodata %s: unknown option '%s'\n", p->cmd, a);
  }
  usage_line(p->cli_, stderr);
  return AD_EINVAL;
}

int opts_exit_code(int rc) { return rc == OPTS_HELP ? 0 : rc ? 2 : 0; }

int opts_reject(const char *cmd, const char *flag, const char *text, const char *what_fmt, ...) {
  va_list ap;
  va_start(ap, what_fmt);
  fprintf(stderr, "autodata %s: %s expects ", cmd, flag);
  vfprintf(stderr, what_fmt, ap);
  fprintf(stderr, ", got '%s'\n", text ? text : "");
  va_end(ap);
  return AD_EINVAL;
}

/* Decimal digits after an optional sign ('-' only when neg_ok), nothing else. */
static int int_syntax(const char *s, int neg_ok) {
  if (!s) return 0;
  if (*s == '+' || (neg_ok && *s == '-')) s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

static int reject_range_ll(const char *cmd, const char *flag, const char *text, long long lo,
                           long long hi, long long type_max) {
  if (hi == type_max && lo == 0) return opts_reject(cmd, flag, text, "a non-negative integer");
  if (hi == type_max) return opts_reject(cmd, flag, text, "an integer >= %lld", lo);
  return opts_reject(cmd, flag, text, "an integer in %lld..%lld", lo, hi);
}

/* text as a signed decimal integer in lo..hi: 1 and *v, else 0. */
static int ll_in_range(const char *text, long long lo, long long hi, long long *v) {
  if (!int_syntax(text, 1)) return 0;
  errno = 0;
  *v = strtoll(text, NULL, 10);
  return !errno && *v >= lo && *v <= hi;
}

int opts_llong(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
               long long *out) {
  long long v;
  if (ll_in_range(text, lo, hi, &v)) {
    *out = v;
    return 0;
  }
  return reject_range_ll(cmd, flag, text, lo, hi, LLONG_MAX);
}

int opts_int(const char *cmd, const char *flag, const char *text, int lo, int hi, int *out) {
  long long v;
  if (ll_in_range(text, lo, hi, &v)) {
    *out = (int)v;
    return 0;
  }
  return reject_range_ll(cmd, flag, text, lo, hi, INT_MAX);
}

int opts_u64(const char *cmd, const char *flag, const char *text, uint64_t lo, uint64_t hi,
             uint64_t *out) {
  if (int_syntax(text, 0)) {
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (!errno && v >= lo && v <= hi) {
      *out = (uint64_t)v;
      return 0;
    }
  }
  if (hi == UINT64_MAX && lo == 0) return opts_reject(cmd, flag, text, "a non-negative integer");
  if (hi == UINT64_MAX)
    return opts_reject(cmd, flag, text, "an integer >= %llu", (unsigned long long)lo);
  return opts_reject(cmd, flag, text, "an integer in %llu..%llu", (unsigned long long)lo,
                     (unsigned long long)hi);
}

int opts_size(const char *cmd, const char *flag, const char *text, size_t lo, size_t hi,
              size_t *out) {
  uint64_t v;
  int rc = opts_u64(cmd, flag, text, (uint64_t)lo, (uint64_t)hi, &v);
  if (!rc) *out = (size_t)v;
  return rc;
}

int opts_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
                double *out) {
  if (text && *text && !isspace((unsigned char)*text)) {
    char *end;
    double v = strtod(text, &end);
    if (!*end && v >= lo && v <= hi) { /* NaN fails the comparisons */
      *out = v;
      return 0;
    }
  }
  return opts_reject(cmd, flag, text, "a number in [%g, %g]", lo, hi);
}

int opts_choice(const char *cmd, const char *flag, const char *text, const char *const choices[],
                int *idx) {
  int n = 0;
  for (; choices[n]; n++)
    if (text && !strcmp(text, choices[n])) {
      *idx = n;
      return 0;
    }
  char list[512];
  size_t len = 0;
  list[0] = '\0';
  for (int i = 0; i < n && len < sizeof list; i++) {
    const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
    int w = snprintf(list + len, sizeof list - len, "%s%s", sep, choices[i]);
    if (w < 0) break;
    len += (size_t)w;
  }
  return opts_reject(cmd, flag, text, "%s", list);
}
