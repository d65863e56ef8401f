/* source.c - corpus readers (JSONL file, folder of .txt/.md). See source.h. */
#include "source/source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define SRC_TITLE_MAX 200
#define SRC_TITLE_SCAN_LINES 50

const char *src_format_name(enum src_format f) {
  switch (f) {
  case SRC_FORMAT_JSONL: return "jsonl";
  case SRC_FORMAT_DIR: return "dir";
  default: return "auto";
  }
}

void src_options_init(struct src_options *o) {
  memset(o, 0, sizeof *o);
  o->format = SRC_FORMAT_AUTO;
  o->id_field = "id";
  o->title_field = "title";
  o->text_field = "text";
  o->max_chars = 20000;
  o->shuffle_seed = 1;
}

/* ---- UTF-8 helpers ------------------------------------------------------ */

static int is_cont(unsigned char c) { return (c & 0xc0) == 0x80; }
static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t src_utf8_chars(const char *text, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += !is_cont((unsigned char)text[i]);
  return n;
}

size_t src_truncate_len(const char *text, size_t len, size_t max_chars) {
  if (max_chars == 0) return len;
  size_t chars = 0, cut = len;
  for (size_t i = 0; i < len; i++) {
    if (!is_cont((unsigned char)text[i])) {
      if (chars == max_chars) {
        cut = i;
        break;
      }
      chars++;
    }
  }
  if (cut == len) return len;
  if (!is_ws(text[cut])) {
    size_t back = cut / 5 > 100 ? cut / 5 : 100; /* look back 20% or 100 bytes */
    size_t lower = cut > back ? cut - back : 0;
    size_t p = cut;
    while (p > lower && !is_ws(text[p - 1])) p--;
    if (p > 0 && is_ws(text[p - 1])) cut = p - 1;
  }
  while (cut > 0 && is_ws(text[cut - 1])) cut--;
  return cut;
}

/* ---- corpus building ---------------------------------------------------- */

/* A streamed corpus's entry: where a document's record is and what it holds, 64 bytes. Its
 * strings are in the corpus's `names`, from `name` on: the id, then (ENT_FILE) the folder
 * document's path, then (until src_corpus_drop_titles) the title, each NUL-terminated. The
 * 32-bit fields cannot overflow: a record is at most AD_MAX_LINE bytes; a corpus whose names
 * pass 4 GiB or whose lines pass 2^32 - 1 is refused (AD_ETOOBIG) rather than indexed. */
struct src_ent {
  int64_t offset;      /* JSONL: the line's first byte */
  uint8_t sha[32];     /* SHA-256 of the text as kept (after truncation) */
  uint32_t name;       /* the id's offset in names */
  uint32_t rec_len;    /* JSONL: the line's bytes */
  uint32_t text_len;   /* bytes of the text as kept */
  uint32_t orig_chars; /* characters before truncation */
  uint32_t line;       /* JSONL line number; 0 for folder documents */
  uint32_t flags;      /* ENT_* */
};
enum { ENT_TRUNCATED = 1, ENT_FILE = 2 };
_Static_assert(sizeof(struct src_ent) == 64, "a streamed corpus's entry is 64 bytes");

struct builder {
  const struct src_options *o;
  struct src_doc *docs; /* not streamed: the documents */
  struct src_ent *ents; /* streamed: their entries */
  size_t n, cap;        /* of docs or ents */
  char *names;          /* streamed: the entries' strings (struct src_ent) */
  size_t names_len, names_cap;
  struct src_doc cur; /* streamed: the record being indexed */
  int too_big;        /* streamed: names over 4 GiB or a line number over 2^32 - 1 */
  struct sha256 sha;
  size_t n_records; /* records seen, valid or not (read_max) */
  size_t n_invalid; /* skipped (on_invalid: skip) */
  char first_invalid[512];
};

static const char *ent_id(const char *names, const struct src_ent *e) { return names + e->name; }
static const char *ent_file(const char *names, const struct src_ent *e) {
  if (!(e->flags & ENT_FILE)) return NULL;
  const char *id = ent_id(names, e);
  return id + strlen(id) + 1;
}
/* Only while the names hold the titles. */
static const char *ent_title(const char *names, const struct src_ent *e) {
  const char *p = ent_id(names, e);
  p += strlen(p) + 1;
  if (e->flags & ENT_FILE) p += strlen(p) + 1;
  return p;
}
/* The bytes of e's strings (titles: with its title). */
static size_t ent_names_len(const char *names, const struct src_ent *e, int titles) {
  const char *p = ent_id(names, e), *s = p;
  p += strlen(p) + 1;
  if (e->flags & ENT_FILE) p += strlen(p) + 1;
  if (titles) p += strlen(p) + 1;
  return (size_t)(p - s);
}

static void names_add(struct builder *b, const char *s, size_t n) {
  if (b->names_cap - b->names_len < n + 1) {
    while (b->names_cap - b->names_len < n + 1)
      b->names_cap = b->names_cap ? 2 * b->names_cap : 4096;
    b->names = xrealloc(b->names, b->names_cap);
  }
  memcpy(b->names + b->names_len, s, n);
  b->names[b->names_len + n] = '\0';
  b->names_len += n + 1;
}

/* Copy the names of ents[0..n) (which had their titles: had_titles) into one new array, keeping
 * the titles or not; ents' name offsets follow. Drops the names of entries no longer kept. */
static void names_compact(struct src_ent *ents, size_t n, char **names, size_t *len, int had_titles,
                          int keep_titles) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += ent_names_len(*names, &ents[i], had_titles && keep_titles);
  char *out = xmalloc(total ? total : 1);
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = ent_names_len(*names, &ents[i], had_titles && keep_titles);
    memcpy(out + at, *names + ents[i].name, k);
    ents[i].name = (uint32_t)at;
    at += k;
  }
  free(*names);
  *names = out;
  *len = total;
}

/* An invalid record, its message in err: AD_EPARSE under "fail", or counted and skipped. */
static int invalid_record(struct builder *b, const struct src_options *o, char *err,
                          size_t errlen) {
  if (o->on_invalid != SRC_INVALID_SKIP) return AD_EPARSE;
  if (!b->n_invalid++) snprintf(b->first_invalid, sizeof b->first_invalid, "%s", err);
  err[0] = '\0';
  if (b->n == 0 && b->n_invalid >= SRC_SKIP_GIVE_UP) { /* /dev/urandom, a binary file */
    ad_set_err(err, errlen,
               "%s: the first %d records are all invalid (sources.on_invalid: skip): not a "
               "text corpus? The first: %s",
               o->path, SRC_SKIP_GIVE_UP, b->first_invalid);
    return AD_EPARSE;
  }
  return 0;
}

/* 0 when t[0..n) is usable text, else AD_EPARSE with "where: what why at byte N". */
static int check_text(const char *where, const char *what, const char *t, size_t n, char *err,
                      size_t errlen) {
  size_t at;
  int tc = jx_text_check(t, n, &at);
  if (!tc) return 0;
  if (tc == JX_TEXT_EMPTY) ad_set_err(err, errlen, "%s: %s is empty", where, what);
  else ad_set_err(err, errlen, "%s: %s %s at byte %zu", where, what, jx_text_problem(tc), at);
  return AD_EPARSE;
}

static void doc_free(struct src_doc *d) {
  free(d->id);
  free(d->title);
  free(d->text);
  free(d->file);
  json_decref(d->meta);
  memset(d, 0, sizeof *d);
}

/* The next document to fill: streamed, the one record being indexed (hash_doc packs it). */
static struct src_doc *new_doc(struct builder *b) {
  if (b->o->stream) {
    doc_free(&b->cur);
    return &b->cur;
  }
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->docs = xrealloc(b->docs, b->cap * sizeof *b->docs);
  }
  struct src_doc *d = &b->docs[b->n++];
  memset(d, 0, sizeof *d);
  return d;
}

static void doc_names(struct src_doc *d, const char *id, size_t id_len, const char *title,
                      size_t title_len) {
  d->id = xstrndup(id, id_len);
  d->title = xstrndup(title, title_len);
}

static const char *b_id(const struct builder *b, size_t i) {
  return b->o->stream ? ent_id(b->names, &b->ents[i]) : b->docs[i].id;
}

static void builder_free(struct builder *b) {
  for (size_t i = 0; !b->o->stream && i < b->n; i++) doc_free(&b->docs[i]);
  doc_free(&b->cur);
  free(b->docs);
  free(b->ents);
  free(b->names);
  b->docs = NULL;
  b->ents = NULL;
  b->names = NULL;
  b->n = b->cap = b->names_len = b->names_cap = 0;
}

void src_corpus_release(struct src_corpus *c) {
  if (!c) return;
  for (size_t i = 0; c->docs && i < c->n; i++) doc_free(&c->docs[i]);
  free(c->docs);
  free(c->ents);
  free(c->names);
  free(c->path);
  free(c->id_field);
  free(c->title_field);
  free(c->text_field);
  memset(c, 0, sizeof *c);
}

const char *src_corpus_id(const struct src_corpus *c, size_t i) {
  return c->stream ? ent_id(c->names, &c->ents[i]) : c->docs[i].id;
}

const char *src_corpus_title(const struct src_corpus *c, size_t i) {
  if (!c->stream) return c->docs[i].title;
  return c->titles_dropped ? NULL : ent_title(c->names, &c->ents[i]);
}

static void hex32(const unsigned char sha[32], char out[65]) {
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

void src_corpus_sha256_hex(const struct src_corpus *c, size_t i, char out[65]) {
  if (c->stream) hex32(c->ents[i].sha, out);
  else sha256_hex(c->docs[i].text, c->docs[i].text_len, out);
}

int src_corpus_keep(struct src_corpus *c, const char *const *ids, size_t n, char *err,
                    size_t errlen) {
  size_t *at = xcalloc(n + 1, sizeof *at);
  for (size_t k = 0; k < n; k++) {
    size_t i = 0;
    while (i < c->n && strcmp(src_corpus_id(c, i), ids[k])) i++;
    if (i == c->n) {
      ad_set_err(err, errlen, "source '%s' is not in the corpus", ids[k]);
      free(at);
      return AD_ENOTFOUND;
    }
    at[k] = i;
  }
  char *taken = xcalloc(c->n + 1, 1);
  size_t m = 0;
  for (size_t k = 0; k < n; k++) { /* a repeated id: keep one copy */
    if (!taken[at[k]]) at[m++] = at[k];
    taken[at[k]] = 1;
  }
  if (c->stream) {
    struct src_ent *kept = xcalloc(m + 1, sizeof *kept);
    for (size_t k = 0; k < m; k++) kept[k] = c->ents[at[k]];
    free(c->ents);
    c->ents = kept;
    names_compact(c->ents, m, &c->names, &c->names_len, !c->titles_dropped, 1);
  } else {
    struct src_doc *kept = xcalloc(m + 1, sizeof *kept);
    for (size_t k = 0; k < m; k++) {
      kept[k] = c->docs[at[k]];
      kept[k].index = k;
    }
    for (size_t i = 0; i < c->n; i++)
      if (!taken[i]) doc_free(&c->docs[i]);
    free(c->docs);
    c->docs = kept;
  }
  c->n = m;
  free(taken);
  free(at);
  return 0;
}

/* Truncate d's text at max_chars (orig_chars, truncated, text_len). */
static void truncate_doc(struct src_doc *d, size_t max_chars) {
  d->orig_chars = src_utf8_chars(d->text, d->text_len);
  size_t keep = src_truncate_len(d->text, d->text_len, max_chars);
  if (keep < d->text_len) {
    d->text[keep] = '\0';
    d->text_len = keep;
    d->truncated = 1;
  }
}

/* Streamed: d (b->cur, truncated and hashed) as an entry. */
static void push_ent(struct builder *b, const struct src_doc *d) {
  size_t id_len = strlen(d->id), file_len = d->file ? strlen(d->file) + 1 : 0;
  size_t title_len = strlen(d->title);
  if (b->too_big || d->line > (long)UINT32_MAX ||
      b->names_len + id_len + file_len + title_len + 2 > (size_t)UINT32_MAX) {
    b->too_big = 1;
    return;
  }
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->ents = xrealloc(b->ents, b->cap * sizeof *b->ents);
  }
  struct src_ent *e = &b->ents[b->n++];
  memset(e, 0, sizeof *e);
  e->offset = d->offset;
  memcpy(e->sha, d->sha, sizeof e->sha);
  e->name = (uint32_t)b->names_len;
  e->rec_len = (uint32_t)d->rec_len;
  e->text_len = (uint32_t)d->text_len;
  e->orig_chars = (uint32_t)d->orig_chars;
  e->line = (uint32_t)d->line;
  e->flags = (d->truncated ? ENT_TRUNCATED : 0) | (d->file ? ENT_FILE : 0);
  names_add(b, d->id, id_len);
  if (d->file) names_add(b, d->file, file_len - 1);
  names_add(b, d->title, title_len);
}

static void hash_doc(struct builder *b, struct src_doc *d) {
  sha256_update(&b->sha, d->id, strlen(d->id) + 1);
  sha256_update(&b->sha, d->text, d->text_len);
  sha256_update(&b->sha, "", 1);
  if (!b->o->stream) return;
  /* an index entry: truncated now (the same cut src_load makes later), hashed, text dropped */
  truncate_doc(d, b->o->max_chars);
  struct sha256 h;
  sha256_init(&h);
  sha256_update(&h, d->text, d->text_len);
  sha256_final(&h, d->sha);
  push_ent(b, d);
  doc_free(d);
}

/* ---- JSONL -------------------------------------------------------------- */

/* "path:line: field 'f' is an array, expected a string" into err; returns AD_EPARSE. */
static int field_type_error(const char *path, long line, const char *field, const json_t *v,
                            const char *expected, char *err, size_t errlen) {
  static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                      "a real",    "true",     "false",    "null"};
  ad_set_err(err, errlen, "%s:%ld: field '%s' is %s, expected %s", path, line, field,
             names[json_typeof(v)], expected);
  return AD_EPARSE;
}

static int jsonl_line(struct builder *b, const struct src_options *o, const char *path, long line,
                      long long offset, const char *p, size_t n, char *err, size_t errlen) {
  int rc = 0;
  json_t *root = NULL;
  size_t k = 0;
  while (k < n && is_ws(p[k])) k++;
  if (k == n) return 0; /* blank line */
  b->n_records++;
  char where[300];
  snprintf(where, sizeof where, "%s:%ld", path, line);
  /* Raw NULs and bytes that are not UTF-8 are a bad record, not something to repair. */
  size_t at;
  int tc = jx_text_check(p, n, &at);
  if (tc == JX_TEXT_NUL || tc == JX_TEXT_BAD_UTF8) {
    ad_set_err(err, errlen, "%s: the line %s at byte %zu", where, jx_text_problem(tc), at + 1);
    return AD_EPARSE;
  }
  json_error_t jerr;
  root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    ad_set_err(err, errlen, "%s:%ld: invalid JSON at column %d: %s", path, line, jerr.column,
               jerr.text);
    rc = AD_EPARSE;
    goto cleanup;
  }
  if (!json_is_object(root)) {
    ad_set_err(err, errlen, "%s:%ld: expected a JSON object per line", path, line);
    rc = AD_EPARSE;
    goto cleanup;
  }
  json_t *text = json_object_get(root, o->text_field);
  if (!text) {
    ad_set_err(err, errlen,
               "%s:%ld: missing string field '%s' (set sources.text_field to the field that "
               "holds the document text)",
               path, line, o->text_field);
    rc = AD_EPARSE;
    goto cleanup;
  }
  if (!json_is_string(text)) {
    rc = field_type_error(path, line, o->text_field, text, "a string", err, errlen);
    goto cleanup;
  }
  json_t *id = json_object_get(root, o->id_field);
  char idbuf[32];
  const char *ids = NULL;
  if (!id || json_is_null(id)) {
    snprintf(idbuf, sizeof idbuf, "%ld", line);
    ids = idbuf;
  } else if (json_is_string(id)) {
    ids = json_string_value(id);
    if (!*ids) {
      ad_set_err(err, errlen, "%s:%ld: field '%s' is an empty string", path, line, o->id_field);
      rc = AD_EPARSE;
      goto cleanup;
    }
  } else if (json_is_integer(id)) {
    snprintf(idbuf, sizeof idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    ids = idbuf;
  } else {
    rc = field_type_error(path, line, o->id_field, id, "a string or an integer", err, errlen);
    goto cleanup;
  }
  json_t *title = json_object_get(root, o->title_field);
  if (title && !json_is_null(title) && !json_is_string(title)) {
    rc = field_type_error(path, line, o->title_field, title, "a string", err, errlen);
    goto cleanup;
  }
  char what[300];
  snprintf(what, sizeof what, "field '%s'", o->text_field);
  if ((rc = check_text(where, what, json_string_value(text), json_string_length(text), err,
                       errlen)))
    goto cleanup;
  struct src_doc *d = new_doc(b);
  d->line = line;
  d->offset = offset;
  d->rec_len = n;
  doc_names(d, ids, strlen(ids), json_is_string(title) ? json_string_value(title) : "",
            json_is_string(title) ? json_string_length(title) : 0);
  d->text_len = json_string_length(text);
  d->text = xstrndup(json_string_value(text), d->text_len);
  if (!o->stream) { /* streamed: read again with the text */
    d->meta = json_deep_copy(root);
    json_object_del(d->meta, o->text_field);
    json_object_del(d->meta, o->id_field);
    json_object_del(d->meta, o->title_field);
  }
  hash_doc(b, d);
cleanup:
  json_decref(root);
  return rc;
}

static int read_jsonl(struct builder *b, const struct src_options *o, char *err, size_t errlen) {
  int rc = 0;
  FILE *f = fopen(o->path, "rb");
  if (!f) {
    ad_set_err(err, errlen, "%s: cannot open: %s", o->path, strerror(errno));
    return AD_EIO;
  }
  struct buf line;
  buf_init(&line, AD_MAX_LINE + 1);
  char chunk[65536];
  long lineno = 1;
  long long base = 0, start = 0; /* bytes before this chunk; the line's first byte */
  size_t got;
  for (; (got = fread(chunk, 1, sizeof chunk, f)) > 0; base += (long long)got) {
    size_t i = 0;
    while (i < got) {
      char *nl = memchr(chunk + i, '\n', got - i);
      size_t take = nl ? (size_t)(nl - (chunk + i)) : got - i;
      if (line.len + take > AD_MAX_LINE) {
        ad_set_err(err, errlen, "%s:%ld: line longer than %u bytes", o->path, lineno,
                   (unsigned)AD_MAX_LINE);
        rc = AD_ETOOBIG;
        goto cleanup;
      }
      if ((rc = buf_append(&line, chunk + i, take))) goto cleanup;
      i += take;
      if (nl) {
        rc = jsonl_line(b, o, o->path, lineno, start, buf_str(&line), line.len, err, errlen);
        start = base + (long long)i + 1;
        if (rc == AD_EPARSE) rc = invalid_record(b, o, err, errlen);
        if (rc) goto cleanup;
        buf_reset(&line);
        lineno++;
        i++;
        if (o->read_max && b->n_records >= o->read_max) goto cleanup;
      }
    }
  }
  if (ferror(f)) {
    ad_set_err(err, errlen, "%s: read error: %s", o->path, strerror(errno));
    rc = AD_EIO;
    goto cleanup;
  }
  if (line.len) {
    rc = jsonl_line(b, o, o->path, lineno, start, buf_str(&line), line.len, err, errlen);
    if (rc == AD_EPARSE) rc = invalid_record(b, o, err, errlen);
  }
cleanup:
  buf_release(&line);
  fclose(f);
  return rc;
}

/* ---- folder ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Title: first markdown heading in the first lines, else first non-blank line. */
static char *make_title(const char *t, size_t n) {
  const char *first = NULL;
  size_t first_len = 0;
  size_t pos = 0;
  for (int ln = 0; pos < n && ln < SRC_TITLE_SCAN_LINES; ln++) {
    const char *nl = memchr(t + pos, '\n', n - pos);
    size_t e = nl ? (size_t)(nl - t) : n;
    size_t a = pos, z = e;
    while (a < z && is_ws(t[a])) a++;
    while (z > a && is_ws(t[z - 1])) z--;
    if (a < z) {
      size_t h = a;
      while (h < z && t[h] == '#') h++;
      if (h > a && h - a <= 6 && h < z && (t[h] == ' ' || t[h] == '\t')) {
        while (h < z && is_ws(t[h])) h++;
        first = t + h;
        first_len = z - h;
        break;
      }
      if (!first) {
        first = t + a;
        first_len = z - a;
      }
    }
    pos = e + 1;
  }
  if (!first) return xstrdup("");
  if (first_len > SRC_TITLE_MAX) {
    first_len = SRC_TITLE_MAX;
    while (first_len > 0 && is_cont((unsigned char)first[first_len])) first_len--;
  }
  return xstrndup(first, first_len); /* t[0..n) holds no NUL (repaired text) */
}

static int has_ext(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && dot != name && (!strcasecmp(dot, ".txt") || !strcasecmp(dot, ".md"));
}

static int read_dir(struct builder *b, const struct src_options *o, char *err, size_t errlen) {
  int rc = 0;
  char **names = NULL;
  size_t nn = 0, cap = 0;
  char *raw = NULL, *path = NULL;
  DIR *dir = opendir(o->path);
  if (!dir) {
    ad_set_err(err, errlen, "%s: cannot open folder: %s", o->path, strerror(errno));
    return AD_EIO;
  }
  struct dirent *de;
  while ((de = readdir(dir))) {
    if (de->d_name[0] == '.' || !has_ext(de->d_name)) continue;
    if (nn == cap) {
      cap = cap ? cap * 2 : 64;
      names = xrealloc(names, cap * sizeof *names);
    }
    names[nn++] = xstrdup(de->d_name);
  }
  if (nn) qsort(names, nn, sizeof *names, cmp_str);
  for (size_t i = 0; i < nn; i++) {
    path = fs_join(o->path, names[i]);
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) {
      free(path);
      path = NULL;
      continue;
    }
    size_t len = 0;
    rc = fs_read_all(path, AD_MAX_LINE, &raw, &len);
    if (rc) {
      if (rc == AD_ETOOBIG)
        ad_set_err(err, errlen, "%s: file larger than %u bytes", path, (unsigned)AD_MAX_LINE);
      else ad_set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      goto cleanup;
    }
    b->n_records++;
    if (check_text(path, "the file", raw, len, err, errlen)) {
      free(raw);
      raw = NULL;
      free(path);
      path = NULL;
      if ((rc = invalid_record(b, o, err, errlen))) goto cleanup;
      continue;
    }
    struct src_doc *d = new_doc(b);
    d->file = path;
    path = NULL;
    d->text = raw; /* checked: valid UTF-8 without NUL */
    d->text_len = len;
    raw = NULL;
    if (o->read_max && b->n_records >= o->read_max) break;
    const char *dot = strrchr(names[i], '.'); /* has_ext() found one */
    char *title = make_title(d->text, d->text_len);
    doc_names(d, names[i], (size_t)(dot - names[i]), title, strlen(title));
    free(title);
    hash_doc(b, d);
  }
cleanup:
  for (size_t i = 0; i < nn; i++) free(names[i]);
  free(names);
  free(raw);
  free(path);
  closedir(dir);
  return rc;
}

/* ---- the index cache (src_options.index_cache) ---------------------------- */

/* The file: struct idx_head, the n entries as kept in memory (struct src_ent, read order),
 * the names (ids and titles), and the XXH3-128 (32 hex digits) of everything before it. */
#define IDX_MAGIC "ADSRCIX2"

struct idx_head {
  char magic[8];
  uint64_t ent_size;            /* sizeof(struct src_ent) */
  uint64_t key[8];              /* the corpus file's stat (idx_key) */
  uint64_t opts;                /* hash of the options that shape it */
  uint64_t n, n_invalid, names; /* entries, invalid skipped, bytes of names */
  char sha256[72], first_invalid[512];
};

static void idx_key(const struct stat *sb, uint64_t key[8]) {
  key[0] = (uint64_t)sb->st_dev;
  key[1] = (uint64_t)sb->st_ino;
  key[2] = (uint64_t)sb->st_size;
  key[3] = (uint64_t)sb->st_mtim.tv_sec;
  key[4] = (uint64_t)sb->st_mtim.tv_nsec;
  key[5] = (uint64_t)sb->st_ctim.tv_sec;
  key[6] = (uint64_t)sb->st_ctim.tv_nsec;
  key[7] = 0;
}

static uint64_t idx_opts(const struct src_options *o) {
  char nums[96];
  snprintf(nums, sizeof nums, "%zu %d %zu", o->max_chars, o->on_invalid, o->read_max);
  const char *parts[] = {o->path, o->id_field, o->title_field, o->text_field, nums};
  uint64_t h = 0;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    h = hash64_seed(parts[i], strlen(parts[i]) + 1, h); /* with its NUL: "a","bc" != "ab","c" */
  return h;
}

/* fread of n bytes into p, hashed: 1 when all were read. */
static int idx_fread(FILE *f, void *p, size_t n, struct hash128_stream *hs) {
  if (n && fread(p, 1, n, f) != n) return 0;
  hash128_stream_update(hs, p, n);
  return 1;
}

/* Every entry's strings inside the names (an id, and its title: the cache is JSONL's). */
static int idx_names_ok(const struct src_ent *ents, size_t n, const char *names, size_t len) {
  if (!len || names[len - 1]) return 0;
  for (size_t i = 0; i < n; i++) {
    const struct src_ent *e = &ents[i];
    if (e->flags & ~(uint32_t)ENT_TRUNCATED || e->name >= len) return 0;
    size_t id_len = strlen(names + e->name);
    if (!id_len || e->name + id_len + 1 >= len) return 0;
  }
  return 1;
}

/* The index from the cache, straight into b's entries and names, when it is the corpus's (key)
 * under these options: 1, else 0 (b left empty). */
static int idx_read(struct builder *b, const struct src_options *o, const uint64_t key[8],
                    char sha_hex[65]) {
  FILE *f = fopen(o->index_cache, "rb");
  if (!f) return 0;
  struct hash128_stream *hs = hash128_stream_new();
  struct idx_head h;
  struct stat sb;
  char sum[33], want[32];
  int ok = !fstat(fileno(f), &sb) && idx_fread(f, &h, sizeof h, hs) &&
           !memcmp(h.magic, IDX_MAGIC, 8) && h.ent_size == sizeof(struct src_ent) &&
           !memcmp(h.key, key, sizeof h.key) && h.opts == idx_opts(o) && h.n > 0 && h.names > 0 &&
           h.names <= (uint64_t)UINT32_MAX + 1 &&
           h.n <= ((uint64_t)sb.st_size - sizeof h) / sizeof(struct src_ent) &&
           (uint64_t)sb.st_size == sizeof h + h.n * sizeof(struct src_ent) + h.names + 32;
  if (ok) { /* sizes checked against the file's: no allocation a damaged header could inflate */
    b->ents = xmalloc((size_t)h.n * sizeof *b->ents);
    b->names = xmalloc((size_t)h.names);
    ok = idx_fread(f, b->ents, (size_t)h.n * sizeof *b->ents, hs) &&
         idx_fread(f, b->names, (size_t)h.names, hs) && fread(want, 1, 32, f) == 32;
  }
  if (ok) { /* the trailer */
    hash128_stream_hex(hs, sum);
    ok = !memcmp(sum, want, 32) && idx_names_ok(b->ents, (size_t)h.n, b->names, (size_t)h.names);
  }
  hash128_stream_free(hs);
  fclose(f);
  if (!ok) {
    builder_free(b);
    return 0;
  }
  b->n = b->cap = (size_t)h.n;
  b->names_len = b->names_cap = (size_t)h.names;
  h.sha256[64] = h.first_invalid[sizeof h.first_invalid - 1] = '\0';
  memcpy(sha_hex, h.sha256, 65);
  b->n_invalid = (size_t)h.n_invalid;
  snprintf(b->first_invalid, sizeof b->first_invalid, "%s", h.first_invalid);
  return 1;
}

static int idx_fwrite(FILE *f, const void *p, size_t n, struct hash128_stream *hs) {
  hash128_stream_update(hs, p, n);
  return !n || fwrite(p, 1, n, f) == n;
}

/* Write the index of b (read from a corpus file whose stat was key) to the cache, through a
 * temporary file renamed over it (fs_write_atomic's way, without a copy of it in memory): best
 * effort (a cache that cannot be written is read from the corpus again next time). */
static void idx_write(const struct builder *b, const struct src_options *o, const uint64_t key[8],
                      const char *sha_hex) {
  struct idx_head h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, IDX_MAGIC, 8);
  h.ent_size = sizeof(struct src_ent);
  memcpy(h.key, key, sizeof h.key);
  h.opts = idx_opts(o);
  h.n = b->n;
  h.n_invalid = b->n_invalid;
  h.names = b->names_len;
  snprintf(h.sha256, sizeof h.sha256, "%s", sha_hex);
  snprintf(h.first_invalid, sizeof h.first_invalid, "%s", b->first_invalid);
  char *tmp = xasprintf("%s.tmp", o->index_cache);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(tmp);
    return;
  }
  struct hash128_stream *hs = hash128_stream_new();
  char sum[33];
  int ok = idx_fwrite(f, &h, sizeof h, hs) && idx_fwrite(f, b->ents, b->n * sizeof *b->ents, hs) &&
           idx_fwrite(f, b->names, b->names_len, hs);
  hash128_stream_hex(hs, sum);
  hash128_stream_free(hs);
  ok = ok && fwrite(sum, 1, 32, f) == 32 && !fflush(f) && !fsync(fileno(f));
  ok = !fclose(f) && ok && !rename(tmp, o->index_cache);
  if (!ok) unlink(tmp);
  free(tmp);
}

/* ---- src_load ----------------------------------------------------------- */

/* "file" or "path:line" of the builder's i-th document. */
static const char *b_where(const struct builder *b, size_t i, const char *path, char *tmp,
                           size_t n) {
  const char *file = b->o->stream ? ent_file(b->names, &b->ents[i]) : b->docs[i].file;
  if (file) return file;
  snprintf(tmp, n, "%s:%ld", path, b->o->stream ? (long)b->ents[i].line : b->docs[i].line);
  return tmp;
}

static int cmp_id_ptr(const void *a, const void *b) {
  const char *const *x = a, *const *y = b;
  int c = strcmp(*x, *y);
  if (c) return c;
  return *x < *y ? -1 : *x > *y; /* each id is its own string: reading order */
}

static int check_dups(struct builder *b, const char *path, char *err, size_t errlen) {
  if (b->n < 2) return 0;
  const char **ids = xmalloc(b->n * sizeof *ids);
  for (size_t i = 0; i < b->n; i++) ids[i] = b_id(b, i);
  qsort(ids, b->n, sizeof *ids, cmp_id_ptr);
  int rc = 0;
  for (size_t k = 1; k < b->n && !rc; k++) {
    if (strcmp(ids[k - 1], ids[k])) continue;
    size_t at[2] = {0, 0}; /* the two documents (a linear search, once) */
    for (int j = 0; j < 2; j++)
      while (b_id(b, at[j]) != ids[k - 1 + j]) at[j]++;
    char w1[512], w2[512];
    ad_set_err(err, errlen, "duplicate source id '%s': %s and %s", ids[k],
               b_where(b, at[0], path, w1, sizeof w1), b_where(b, at[1], path, w2, sizeof w2));
    rc = AD_EEXISTS;
  }
  free(ids);
  return rc;
}

int src_load(const struct src_options *o, struct src_corpus *out, char *err, size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  memset(out, 0, sizeof *out);
  if (!o || !o->path || !*o->path) {
    ad_set_err(err, errlen, "sources.path is not set");
    return AD_EINVAL;
  }
  struct src_options opt = *o;
  if (!opt.id_field) opt.id_field = "id";
  if (!opt.title_field) opt.title_field = "title";
  if (!opt.text_field) opt.text_field = "text";
  struct stat sb;
  if (stat(opt.path, &sb)) {
    ad_set_err(err, errlen, "%s: cannot open: %s", opt.path, strerror(errno));
    return AD_EIO;
  }
  if (opt.format == SRC_FORMAT_AUTO)
    opt.format = S_ISDIR(sb.st_mode) ? SRC_FORMAT_DIR : SRC_FORMAT_JSONL;
  if (opt.format == SRC_FORMAT_JSONL && S_ISDIR(sb.st_mode)) {
    ad_set_err(err, errlen, "%s: is a folder but sources.format is jsonl", opt.path);
    return AD_EINVAL;
  }
  if (opt.format == SRC_FORMAT_DIR && !S_ISDIR(sb.st_mode)) {
    ad_set_err(err, errlen, "%s: is not a folder but sources.format is dir", opt.path);
    return AD_EINVAL;
  }
  struct builder b = {.o = &opt};
  sha256_init(&b.sha);
  uint64_t key[8];
  idx_key(&sb, key);
  int use_idx = opt.stream && opt.index_cache && opt.format == SRC_FORMAT_JSONL;
  char sha_hex[65] = "";
  int cached = use_idx && idx_read(&b, &opt, key, sha_hex);
  int rc = cached                         ? 0
           : opt.format == SRC_FORMAT_DIR ? read_dir(&b, &opt, err, errlen)
                                          : read_jsonl(&b, &opt, err, errlen);
  doc_free(&b.cur); /* streamed: a record read_max stopped at */
  if (!rc && b.too_big) {
    ad_set_err(err, errlen,
               "%s: too large to index: the ids and titles pass 4 GiB, or the lines 2^32 - 1",
               opt.path);
    rc = AD_ETOOBIG;
  } else if (!rc && b.n == 0 && b.n_invalid) {
    ad_set_err(err, errlen,
               "%s: all %zu records are invalid (sources.on_invalid: skip); the first: %s",
               opt.path, b.n_invalid, b.first_invalid);
    rc = AD_EPARSE;
  } else if (!rc && b.n == 0) {
    ad_set_err(err, errlen, "%s: no documents found%s", opt.path,
               opt.format == SRC_FORMAT_DIR ? " (expected *.txt or *.md files)" : "");
    rc = AD_EINVAL;
  }
  if (!rc) rc = check_dups(&b, opt.path, err, errlen);
  if (rc) {
    builder_free(&b);
    return rc;
  }
  if (!cached) {
    unsigned char digest[32];
    sha256_final(&b.sha, digest);
    hex32(digest, sha_hex);
    /* unchanged while read, and not changed in the last 2 s (see index_cache) */
    struct stat after;
    uint64_t key2[8];
    if (use_idx && !stat(opt.path, &after) &&
        (idx_key(&after, key2), !memcmp(key, key2, sizeof key)) &&
        (int64_t)time(NULL) - (int64_t)after.st_mtim.tv_sec > 2)
      idx_write(&b, &opt, key, sha_hex);
  }
  memcpy(out->sha256, sha_hex, sizeof out->sha256);
  out->n_read = b.n;
  out->format = opt.format;
  out->n_invalid = b.n_invalid;
  snprintf(out->first_invalid, sizeof out->first_invalid, "%s", b.first_invalid);
  if (opt.shuffle && b.n > 1) {
    struct rng r;
    rng_seed(&r, opt.shuffle_seed);
    for (size_t i = b.n - 1; i > 0; i--) {
      size_t j = (size_t)rng_below(&r, (uint64_t)i + 1);
      if (opt.stream) {
        struct src_ent tmp = b.ents[i];
        b.ents[i] = b.ents[j];
        b.ents[j] = tmp;
      } else {
        struct src_doc tmp = b.docs[i];
        b.docs[i] = b.docs[j];
        b.docs[j] = tmp;
      }
    }
  }
  if (opt.limit && opt.limit < b.n) {
    for (size_t i = opt.limit; !opt.stream && i < b.n; i++) doc_free(&b.docs[i]);
    b.n = opt.limit;
  }
  out->n = b.n;
  if (!opt.stream) {
    if (b.n < b.cap) b.docs = xrealloc(b.docs, b.n * sizeof *b.docs); /* doubling's slack */
    for (size_t i = 0; i < b.n; i++) {
      struct src_doc *d = &b.docs[i];
      truncate_doc(d, opt.max_chars); /* streamed: when indexed */
      d->index = i;
      out->n_truncated += (size_t)d->truncated;
    }
    out->docs = b.docs;
    return 0;
  }
  if (b.n < b.cap) b.ents = xrealloc(b.ents, b.n * sizeof *b.ents);
  if (b.n < out->n_read) /* limit: only the kept entries' names */
    names_compact(b.ents, b.n, &b.names, &b.names_len, 1, 1);
  else if (b.names_len < b.names_cap) b.names = xrealloc(b.names, b.names_len);
  for (size_t i = 0; i < b.n; i++) out->n_truncated += (b.ents[i].flags & ENT_TRUNCATED) != 0;
  out->stream = 1;
  out->ents = b.ents;
  out->names = b.names;
  out->names_len = b.names_len;
  out->path = xstrdup(opt.path);
  out->id_field = xstrdup(opt.id_field);
  out->title_field = xstrdup(opt.title_field);
  out->text_field = xstrdup(opt.text_field);
  return 0;
}

/* ---- streamed documents ------------------------------------------------- */

static const char *doc_where(const struct src_doc *d, const char *path, char *tmp, size_t n) {
  if (d->file) return d->file;
  snprintf(tmp, n, "%s:%ld", path, d->line);
  return tmp;
}

/* Read the record of d into *raw (a JSONL line or a folder file). */
static int read_record(const struct src_corpus *c, const struct src_doc *d, char **raw, size_t *n,
                       char *err, size_t errlen) {
  const char *path = d->file ? d->file : c->path;
  if (d->file) {
    if (fs_read_all(path, AD_MAX_LINE, raw, n)) {
      ad_set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      return AD_EIO;
    }
    return 0;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    ad_set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return AD_EIO;
  }
  *raw = xmalloc(d->rec_len + 1);
  int ok = fseeko(f, (off_t)d->offset, SEEK_SET) == 0 &&
           fread(*raw, 1, d->rec_len, f) == d->rec_len;
  fclose(f);
  if (!ok) {
    free(*raw);
    *raw = NULL;
    ad_set_err(err, errlen,
               "%s:%ld: cannot read the record again (the file changed since it was read)", path,
               d->line);
    return AD_EIO;
  }
  (*raw)[d->rec_len] = '\0';
  *n = d->rec_len;
  return 0;
}

/* Read d's text, meta and (when NULL) title from its record, exactly as src_load() would have
 * kept them; AD_EMISMATCH when the text is not the one indexed. */
static int doc_load(const struct src_corpus *c, struct src_doc *d, char *err, size_t errlen) {
  char *raw = NULL;
  size_t n = 0;
  int rc = read_record(c, d, &raw, &n, err, errlen);
  if (rc) return rc;
  json_t *root = NULL;
  const char *text = raw;
  size_t tn = n;
  if (!d->file) {
    root = json_loadb(raw, n, JSON_REJECT_DUPLICATES, NULL);
    json_t *t = root ? json_object_get(root, c->text_field) : NULL;
    text = json_string_value(t);
    tn = json_string_length(t);
  }
  unsigned char sha[32];
  if (text && tn >= d->text_len) {
    struct sha256 h;
    sha256_init(&h);
    sha256_update(&h, text, d->text_len);
    sha256_final(&h, sha);
  }
  if (!text || tn < d->text_len || memcmp(sha, d->sha, sizeof sha)) {
    char tmp[512];
    ad_set_err(err, errlen, "%s: source '%s' changed since the corpus was read; run again",
               doc_where(d, c->path, tmp, sizeof tmp), d->id);
    json_decref(root);
    free(raw);
    return AD_EMISMATCH;
  }
  d->text = xstrndup(text, d->text_len);
  if (!d->title) { /* as indexed: the field, else ""; a file's heading */
    const json_t *t = root ? json_object_get(root, c->title_field) : NULL;
    d->title = d->file ? make_title(raw, n)
                       : xstrndup(json_is_string(t) ? json_string_value(t) : "",
                                  json_is_string(t) ? json_string_length(t) : 0);
  }
  if (root) {
    d->meta = json_deep_copy(root);
    json_object_del(d->meta, c->text_field);
    json_object_del(d->meta, c->id_field);
    json_object_del(d->meta, c->title_field);
  }
  json_decref(root);
  free(raw);
  return 0;
}

int src_doc_open(const struct src_corpus *c, size_t i, struct src_doc **out, char *err,
                 size_t errlen) {
  *out = NULL;
  if (!c->stream) {
    *out = &c->docs[i];
    return 0;
  }
  const struct src_ent *e = &c->ents[i];
  const char *file = ent_file(c->names, e);
  struct src_doc *d = xcalloc(1, sizeof *d);
  d->index = i;
  d->id = xstrdup(ent_id(c->names, e));
  d->title = c->titles_dropped ? NULL : xstrdup(ent_title(c->names, e));
  d->file = file ? xstrdup(file) : NULL;
  d->line = (long)e->line;
  d->offset = e->offset;
  d->rec_len = e->rec_len;
  d->text_len = e->text_len;
  d->orig_chars = e->orig_chars;
  d->truncated = (e->flags & ENT_TRUNCATED) != 0;
  memcpy(d->sha, e->sha, sizeof d->sha);
  int rc = doc_load(c, d, err, errlen);
  if (rc) {
    doc_free(d);
    free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void src_doc_close(const struct src_corpus *c, struct src_doc *d) {
  if (!c->stream || !d) return;
  doc_free(d);
  free(d);
}

void src_corpus_drop_titles(struct src_corpus *c) {
  if (!c->stream || c->titles_dropped) return;
  names_compact(c->ents, c->n, &c->names, &c->names_len, 1, 0);
  c->titles_dropped = 1;
}
