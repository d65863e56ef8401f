/* template.c - the prompt template engine (see template.h for the syntax).
 *
 * A template compiles to a flat array of nodes. A section node records the index
 * one past its closing tag, so rendering walks [from, to) ranges recursively; the
 * nesting depth is capped at compile time (TPL_MAX_DEPTH) and the work done while
 * rendering is capped (TPL_MAX_STEPS) so neither a hostile template nor hostile
 * data can recurse without bound or loop for ever.
 */
#include "prompt/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonx.h"
#include "util/mem.h"

#define TPL_MAX_DEPTH 64
#define TPL_MAX_STEPS (1000u * 1000) /* a rubric of 256 items takes ~2k */

enum node_type { N_TEXT, N_VAR, N_SECTION, N_INVERTED };

struct node {
  enum node_type type;
  size_t off, len; /* N_TEXT: bytes of tpl->src */
  char **parts;    /* path components; nparts 0 = "." */
  int nparts;
  int special; /* 1 = @index, 2 = @number */
  char *name;  /* the tag's name as written */
  int line, col;
  size_t end; /* sections: index one past the closing tag */
};

struct tpl {
  char *name;
  char *src;
  struct node *nodes;
  size_t n, cap;
};

/* ---- compile ------------------------------------------------------------ */

struct cursor { /* incremental position -> line:column */
  const char *s;
  size_t pos;
  int line, col;
};

static void cur_advance(struct cursor *c, size_t to) {
  while (c->pos < to) {
    if (c->s[c->pos] == '\n') {
      c->line++;
      c->col = 1;
    } else if (((unsigned char)c->s[c->pos] & 0xc0) != 0x80) {
      c->col++;
    }
    c->pos++;
  }
}

static void node_free(struct node *nd) {
  for (int i = 0; i < nd->nparts; i++) free(nd->parts[i]);
  free(nd->parts);
  free(nd->name);
}

void tpl_free(tpl *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) node_free(&t->nodes[i]);
  free(t->nodes);
  free(t->src);
  free(t->name);
  free(t);
}

static struct node *push_node(tpl *t) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    t->nodes = xrealloc(t->nodes, t->cap * sizeof *t->nodes);
  }
  struct node *nd = &t->nodes[t->n++];
  memset(nd, 0, sizeof *nd);
  return nd;
}

/* A text node for src[off, off + len). */
static void push_text(tpl *t, size_t off, size_t len) {
  struct node *nd = push_node(t);
  nd->type = N_TEXT;
  nd->off = off;
  nd->len = len;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static int is_space(char c) { return is_blank(c) || c == '\n' || c == '\f' || c == '\v'; }

/* Split a tag name into path parts. Returns 0, AD_EPARSE for an empty part. */
static int split_path(struct node *nd, const char *name) {
  if (!strcmp(name, ".")) return 0;
  if (!strcmp(name, "@index")) {
    nd->special = 1;
    return 0;
  }
  if (!strcmp(name, "@number")) {
    nd->special = 2;
    return 0;
  }
  int cnt = 1;
  for (const char *p = name; *p; p++) cnt += *p == '.';
  nd->parts = xcalloc((size_t)cnt, sizeof *nd->parts);
  const char *p = name;
  for (int i = 0; i < cnt; i++) {
    const char *e = strchr(p, '.');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == 0) return AD_EPARSE;
    nd->parts[i] = xstrndup(p, l);
    nd->nparts = i + 1;
    p = e ? e + 1 : p + l;
  }
  return 0;
}

int tpl_compile(const char *text, size_t len, const char *name, int first_line, tpl **out,
                char *err, size_t errlen) {
  int rc = 0;
  size_t stack[TPL_MAX_DEPTH];
  int depth = 0;
  *out = NULL;
  if (!name) name = "template";
  if (err && errlen) err[0] = '\0';
  tpl *t = xcalloc(1, sizeof *t);
  t->name = xstrdup(name);
  t->src = xstrndup(text, len); /* text[0..len) may hold NULs: copied as is */
  const char *s = t->src;
  struct cursor cur = {s, 0, first_line > 0 ? first_line : 1, 1};
  size_t pos = 0;
  while (pos < len) {
    const char *open = memmem(s + pos, len - pos, "{{", 2);
    size_t t0 = open ? (size_t)(open - s) : len; /* tag start */
    if (!open) {
      push_text(t, pos, len - pos);
      break;
    }
    cur_advance(&cur, t0);
    int tline = cur.line, tcol = cur.col;
    const char *close = memmem(s + t0 + 2, len - t0 - 2, "}}", 2);
    if (!close) {
      ad_set_err(err, errlen, "%s:%d:%d: unterminated tag '{{' (no closing '}}')", name, tline,
                 tcol);
      rc = AD_EPARSE;
      goto fail;
    }
    size_t cend = (size_t)(close - s); /* content is [t0+2, cend) */
    size_t e = cend + 2;               /* after the tag */
    char kind = s[t0 + 2];
    size_t nb = t0 + 2, ne = cend;
    if (kind == '!' || kind == '#' || kind == '^' || kind == '/') nb++;
    else kind = 0;
    while (nb < ne && is_space(s[nb])) nb++;
    while (ne > nb && is_space(s[ne - 1])) ne--;
    if (kind != '!') {
      if (ne == nb) {
        ad_set_err(err, errlen, "%s:%d:%d: empty tag name", name, tline, tcol);
        rc = AD_EPARSE;
        goto fail;
      }
      for (size_t i = nb; i < ne; i++) {
        if (is_space(s[i]) || s[i] == '{' || s[i] == '}') {
          ad_set_err(err, errlen, "%s:%d:%d: invalid character in tag name '%.*s'", name, tline,
                     tcol, (int)(ne - nb > 60 ? 60 : ne - nb), s + nb);
          rc = AD_EPARSE;
          goto fail;
        }
      }
    }
    /* Standalone line handling for non-output tags. */
    size_t text_end = t0, next = e;
    if (kind) {
      size_t ls = t0;
      while (ls > pos && is_blank(s[ls - 1])) ls--;
      int at_line_start = ls == 0 || s[ls - 1] == '\n';
      size_t q = e;
      while (q < len && is_blank(s[q])) q++;
      int at_line_end = q == len || s[q] == '\n';
      if (at_line_start && at_line_end) {
        text_end = ls;
        next = q < len ? q + 1 : q;
      }
    }
    if (text_end > pos) push_text(t, pos, text_end - pos);
    if (kind == '!') {
      pos = next;
      continue;
    }
    char *tname = xstrndup(s + nb, ne - nb);
    if (kind == '/') {
      if (depth == 0) {
        ad_set_err(err, errlen, "%s:%d:%d: closing tag '{{/%s}}' without an open section", name,
                   tline, tcol, tname);
        free(tname);
        rc = AD_EPARSE;
        goto fail;
      }
      struct node *open_nd = &t->nodes[stack[depth - 1]];
      if (strcmp(open_nd->name, tname)) {
        ad_set_err(err, errlen,
                   "%s:%d:%d: closing tag '{{/%s}}' does not match open section '%s' (opened at "
                   "%d:%d)",
                   name, tline, tcol, tname, open_nd->name, open_nd->line, open_nd->col);
        free(tname);
        rc = AD_EPARSE;
        goto fail;
      }
      free(tname);
      open_nd->end = t->n;
      depth--;
      pos = next;
      continue;
    }
    struct node *nd = push_node(t);
    nd->type = kind == '#' ? N_SECTION : kind == '^' ? N_INVERTED : N_VAR;
    nd->name = tname;
    nd->line = tline;
    nd->col = tcol;
    rc = split_path(nd, tname);
    if (rc) {
      ad_set_err(err, errlen, "%s:%d:%d: bad variable path '%s'", name, tline, tcol, tname);
      goto fail;
    }
    if (nd->special && nd->type != N_VAR) {
      ad_set_err(err, errlen, "%s:%d:%d: '%s' cannot open a section", name, tline, tcol, tname);
      rc = AD_EPARSE;
      goto fail;
    }
    if (nd->type != N_VAR) {
      if (depth == TPL_MAX_DEPTH) {
        ad_set_err(err, errlen, "%s:%d:%d: sections nested deeper than %d", name, tline, tcol,
                   TPL_MAX_DEPTH);
        rc = AD_EPARSE;
        goto fail;
      }
      stack[depth++] = t->n - 1;
    }
    pos = next;
  }
  if (depth > 0) {
    struct node *nd = &t->nodes[stack[depth - 1]];
    ad_set_err(err, errlen, "%s:%d:%d: section '%s' is never closed (expected '{{/%s}}')", name,
               nd->line, nd->col, nd->name, nd->name);
    rc = AD_EPARSE;
    goto fail;
  }
  *out = t;
  return 0;
fail:
  tpl_free(t);
  return rc;
}

/* ---- render ------------------------------------------------------------- */

struct frame {
  const json_t *v;
  long index; /* -1 when not an array element */
};

struct rstate {
  const tpl *t;
  unsigned flags;
  struct buf *out;
  size_t start_len;
  size_t steps;
  struct frame frames[TPL_MAX_DEPTH + 2];
  int nframes;
  char *err;
  size_t errlen;
};

static int emit(struct rstate *st, const char *p, size_t n) {
  if (st->out->len - st->start_len + n > AD_MAX_PROMPT) {
    ad_set_err(st->err, st->errlen, "%s: rendered prompt exceeds %u bytes", st->t->name,
               (unsigned)AD_MAX_PROMPT);
    return AD_ETOOBIG;
  }
  int rc = buf_append(st->out, p, n);
  if (rc)
    ad_set_err(st->err, st->errlen, "%s: rendered prompt exceeds the output buffer's limit",
               st->t->name);
  return rc;
}

static const json_t *child(const json_t *v, const char *part) {
  if (json_is_object(v)) return json_object_get(v, part);
  if (json_is_array(v)) {
    char *endp;
    if (!*part || *part == '-' || *part == '+') return NULL;
    unsigned long long i = strtoull(part, &endp, 10);
    if (*endp || i >= json_array_size(v)) return NULL;
    return json_array_get(v, (size_t)i);
  }
  return NULL;
}

/* Resolve a node's path: NULL when unknown. */
static const json_t *lookup(const struct rstate *st, const struct node *nd) {
  if (nd->nparts == 0) return st->frames[st->nframes - 1].v;
  const json_t *v = NULL;
  for (int f = st->nframes - 1; f >= 0; f--) {
    const json_t *fv = st->frames[f].v;
    if (json_is_object(fv) && (v = json_object_get(fv, nd->parts[0]))) break;
  }
  for (int i = 1; v && i < nd->nparts; i++) v = child(v, nd->parts[i]);
  return v;
}

static int truthy(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_NULL:
  case JSON_FALSE: return 0;
  case JSON_TRUE: return 1;
  case JSON_INTEGER: return json_integer_value(v) != 0;
  case JSON_REAL: return json_real_value(v) != 0.0;
  case JSON_STRING: return json_string_length(v) > 0;
  case JSON_ARRAY: return json_array_size(v) > 0;
  case JSON_OBJECT: return json_object_size(v) > 0;
  }
  return 0;
}

static int emit_value(struct rstate *st, const json_t *v) {
  char num[64];
  switch (json_typeof(v)) {
  case JSON_NULL: return 0;
  case JSON_TRUE: return emit(st, "true", 4);
  case JSON_FALSE: return emit(st, "false", 5);
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return emit(st, num, strlen(num));
  case JSON_REAL: {
    double d = json_real_value(v);
    if (d > 1e15 || d < -1e15) snprintf(num, sizeof num, "%.6g", d);
    else {
      snprintf(num, sizeof num, "%.4f", d);
      char *dot = strchr(num, '.');
      if (dot) {
        char *e = num + strlen(num);
        while (e > dot + 1 && e[-1] == '0') *--e = '\0';
        if (e == dot + 1) *dot = '\0';
      }
      if (!strcmp(num, "-0")) strcpy(num, "0");
    }
    return emit(st, num, strlen(num));
  }
  case JSON_STRING: return emit(st, json_string_value(v), json_string_length(v));
  case JSON_ARRAY:
  case JSON_OBJECT: {
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!d) { /* jansson refuses a value that contains itself */
      ad_set_err(st->err, st->errlen, "%s: a value cannot be rendered as JSON", st->t->name);
      return AD_EINVAL;
    }
    int rc = emit(st, d, strlen(d));
    free(d);
    return rc;
  }
  }
  return 0;
}

static int unknown(struct rstate *st, const struct node *nd, const char *what) {
  ad_set_err(st->err, st->errlen, "%s:%d:%d: unknown %s '%s'", st->t->name, nd->line, nd->col, what,
             nd->name);
  return AD_ENOTFOUND;
}

static int render_range(struct rstate *st, size_t from, size_t to);

static int push_and_render(struct rstate *st, const json_t *v, long index, size_t from, size_t to) {
  if (st->nframes >= (int)(sizeof st->frames / sizeof st->frames[0])) return AD_EINTERNAL;
  st->frames[st->nframes].v = v;
  st->frames[st->nframes].index = index;
  st->nframes++;
  int rc = render_range(st, from, to);
  st->nframes--;
  return rc;
}

static int render_range(struct rstate *st, size_t from, size_t to) {
  const tpl *t = st->t;
  size_t i = from;
  while (i < to) {
    const struct node *nd = &t->nodes[i];
    if (++st->steps > TPL_MAX_STEPS) {
      ad_set_err(st->err, st->errlen, "%s: rendering took more than %u steps", t->name,
                 (unsigned)TPL_MAX_STEPS);
      return AD_ETOOBIG;
    }
    int rc = 0;
    switch (nd->type) {
    case N_TEXT:
      rc = emit(st, t->src + nd->off, nd->len);
      i++;
      break;
    case N_VAR:
      if (nd->special) {
        long idx = -1;
        for (int f = st->nframes - 1; f >= 0 && idx < 0; f--) idx = st->frames[f].index;
        if (idx < 0) {
          if (st->flags & TPL_LENIENT) {
            i++;
            break;
          }
          ad_set_err(st->err, st->errlen, "%s:%d:%d: '%s' used outside a section over a list",
                     t->name, nd->line, nd->col, nd->name);
          return AD_ENOTFOUND;
        }
        char num[32];
        snprintf(num, sizeof num, "%ld", idx + (nd->special == 2));
        rc = emit(st, num, strlen(num));
      } else {
        const json_t *v = lookup(st, nd);
        if (!v) {
          if (!(st->flags & TPL_LENIENT)) return unknown(st, nd, "variable");
        } else {
          rc = emit_value(st, v);
        }
      }
      i++;
      break;
    case N_SECTION:
    case N_INVERTED: {
      const json_t *v = lookup(st, nd);
      if (!v && !(st->flags & TPL_LENIENT)) return unknown(st, nd, "section");
      int on = v && truthy(v);
      if (st->flags & TPL_CHECK) { /* visit every body once, whatever the values */
        if (json_is_array(v) && json_array_size(v))
          rc = push_and_render(st, json_array_get(v, 0), 0, i + 1, nd->end);
        else if (json_is_object(v) && nd->type == N_SECTION)
          rc = push_and_render(st, v, -1, i + 1, nd->end);
        else rc = render_range(st, i + 1, nd->end);
      } else if (nd->type == N_INVERTED) {
        if (!on) rc = render_range(st, i + 1, nd->end);
      } else if (on) {
        if (json_is_array(v)) {
          for (size_t k = 0; k < json_array_size(v) && !rc; k++)
            rc = push_and_render(st, json_array_get(v, k), (long)k, i + 1, nd->end);
        } else {
          rc = push_and_render(st, v, -1, i + 1, nd->end);
        }
      }
      i = nd->end;
      break;
    }
    }
    if (rc) return rc;
  }
  return 0;
}

int tpl_render_ex(const tpl *t, const json_t *vars, unsigned flags, struct buf *out, char *err,
                  size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (!t || !out) return AD_EINVAL;
  struct rstate st = {0};
  st.t = t;
  st.flags = flags;
  st.out = out;
  st.start_len = out->len;
  st.err = err;
  st.errlen = errlen;
  json_t *empty = NULL;
  if (!vars) vars = empty = json_object();
  st.frames[0].v = vars;
  st.frames[0].index = -1;
  st.nframes = 1;
  int rc = render_range(&st, 0, t->n); /* an empty render leaves out as it was ("") */
  json_decref(empty);
  return rc;
}

int tpl_render(const tpl *t, const json_t *vars, struct buf *out, char *err, size_t errlen) {
  return tpl_render_ex(t, vars, 0, out, err, errlen);
}

json_t *tpl_variables(const tpl *t) {
  json_t *arr = json_array();
  if (!t) return arr;
  for (size_t i = 0; i < t->n; i++) {
    const struct node *nd = &t->nodes[i];
    if (nd->type == N_TEXT || nd->nparts == 0) continue;
    int seen = 0;
    for (size_t k = 0; k < json_array_size(arr) && !seen; k++)
      seen = !strcmp(json_string_value(json_array_get(arr, k)), nd->parts[0]);
    if (!seen) json_array_append_new(arr, jx_string_lossy(nd->parts[0], strlen(nd->parts[0])));
  }
  return arr;
}

/* ---- prompt files ------------------------------------------------------- */

/* Does line [a, b) (without its newline) consist of marker, blanks around? */
static int line_is(const char *s, size_t a, size_t b, const char *marker) {
  while (a < b && is_blank(s[a])) a++;
  while (b > a && is_blank(s[b - 1])) b--;
  size_t ml = strlen(marker);
  return b - a == ml && !memcmp(s + a, marker, ml);
}

static int count_lines(const char *s, size_t upto) {
  int n = 1;
  for (size_t i = 0; i < upto; i++) n += s[i] == '\n';
  return n;
}

/* Trim blank lines at the start and whitespace at the end of [*a, *b). */
static void trim_part(const char *s, size_t *a, size_t *b) {
  size_t p = *a;
  for (;;) {
    size_t q = p;
    while (q < *b && is_blank(s[q])) q++;
    if (q < *b && s[q] == '\n') p = q + 1;
    else break;
  }
  *a = p;
  while (*b > *a && is_space(s[*b - 1])) (*b)--;
}

void tpl_prompt_release(struct tpl_prompt *p) {
  if (!p) return;
  tpl_free(p->system);
  tpl_free(p->user);
  p->system = p->user = NULL;
}

int tpl_prompt_compile(const char *text, size_t len, const char *name, struct tpl_prompt *out,
                       char *err, size_t errlen) {
  out->system = out->user = NULL;
  size_t sys_a = 0, sys_b = 0, usr_a = 0, usr_b = len;
  int have_user_marker = 0, first_content_seen = 0;
  for (size_t a = 0; a < len;) {
    const char *nl = memchr(text + a, '\n', len - a);
    size_t b = nl ? (size_t)(nl - text) : len;
    size_t next = nl ? b + 1 : len;
    if (!first_content_seen) {
      size_t q = a;
      while (q < b && is_space(text[q])) q++;
      if (q < b) {
        first_content_seen = 1;
        if (line_is(text, a, b, "=== system ===")) {
          sys_a = next;
          a = next;
          continue;
        }
      }
    }
    if (line_is(text, a, b, "=== user ===")) {
      sys_b = a;
      usr_a = next;
      have_user_marker = 1;
      break;
    }
    a = next;
  }
  int rc;
  if (have_user_marker) {
    trim_part(text, &sys_a, &sys_b);
    if (sys_b > sys_a) {
      rc = tpl_compile(text + sys_a, sys_b - sys_a, name, count_lines(text, sys_a), &out->system,
                       err, errlen);
      if (rc) return rc;
    }
  } else {
    usr_a = sys_a; /* a lone "=== system ===" line is dropped; the rest is the user part */
  }
  trim_part(text, &usr_a, &usr_b);
  rc = tpl_compile(text + usr_a, usr_b - usr_a, name, count_lines(text, usr_a), &out->user, err,
                   errlen);
  if (rc) {
    tpl_prompt_release(out);
    return rc;
  }
  return 0;
}

static void add_message(json_t *msgs, const char *role, const struct buf *b) {
  json_array_append_new(
      msgs, json_pack("{s:s, s:o}", "role", role, "content", jx_string_lossy(b->data, b->len)));
}

int tpl_prompt_render(const struct tpl_prompt *p, const tpl *system_override, const json_t *vars,
                      unsigned flags, json_t **messages, char *err, size_t errlen) {
  int rc = 0;
  struct buf sys = BUF_INIT, usr = BUF_INIT;
  json_t *msgs = NULL;
  *messages = NULL;
  if (!p || !p->user) return AD_EINVAL;
  const tpl *st = system_override ? system_override : p->system;
  buf_init(&sys, AD_MAX_PROMPT);
  buf_init(&usr, AD_MAX_PROMPT);
  if (st && (rc = tpl_render_ex(st, vars, flags, &sys, err, errlen))) goto cleanup;
  if ((rc = tpl_render_ex(p->user, vars, flags, &usr, err, errlen))) goto cleanup;
  msgs = json_array();
  if (sys.len) add_message(msgs, "system", &sys);
  add_message(msgs, "user", &usr);
  *messages = msgs;
  msgs = NULL;
cleanup:
  json_decref(msgs);
  buf_release(&sys);
  buf_release(&usr);
  return rc;
}
