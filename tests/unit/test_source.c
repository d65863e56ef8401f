/* test_source.c - source readers: JSONL fields, bad lines, folders, truncation,
 * shuffle determinism, duplicate ids, UTF-8 repair, corpus hash. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source/source.h"
#include "util/hash.h"

#include "helpers.h"

static char tmpdir[64];

static void mk_tmp(void) { th_mkdtemp(tmpdir, sizeof tmpdir, "src"); }

/* Write <tmpdir>/name; returns its path. */
static const char *write_file(const char *name, const char *content) {
  return th_write_file(th_path(tmpdir, name), content);
}

static void rm_tmp(void) { cr_assert_eq(th_rmtree(tmpdir), 0); }

TestSuite(source, .init = mk_tmp, .fini = rm_tmp);

static int load(const char *path, struct src_options *o, struct src_corpus *c, char *err,
                size_t n) {
  o->path = path;
  return src_load(o, c, err, n);
}

Test(source, jsonl_default_fields) {
  const char *p = write_file("a.jsonl",
                             "{\"id\":\"p1\",\"title\":\"One\",\"text\":\"alpha\",\"year\":2020}\n"
                             "\n   \n"
                             "{\"text\":\"no id here\"}\n"
                             "{\"id\":7,\"text\":\"int id\"}");
  struct src_options o;
  src_options_init(&o);
  struct src_corpus c;
  char err[256];
  cr_assert_eq(load(p, &o, &c, err, sizeof err), 0, "%s", err);
  cr_assert_eq(c.n, 3);
  cr_assert_eq(c.n_read, 3);
  cr_assert_eq(c.format, SRC_FORMAT_JSONL);
  cr_assert_str_eq(c.docs[0].id, "p1");
  cr_assert_str_eq(c.docs[0].title, "One");
  cr_assert_str_eq(c.docs[0].text, "alpha");
  cr_assert_eq(c.docs[0].line, 1);
  cr_assert_eq(json_integer_value(json_object_get(c.docs[0].meta, "year")), 2020);
  cr_assert_null(json_object_get(c.docs[0].meta, "text"), "text is not duplicated in meta");
  cr_assert_str_eq(c.docs[1].id, "4", "missing id -> line number");
  cr_assert_str_eq(c.docs[1].title, "");
  cr_assert_str_eq(c.docs[2].id, "7");
  cr_assert_eq(strlen(c.sha256), 64);
  src_corpus_release(&c);
}

Test(source, jsonl_custom_fields) {
  const char *p = write_file(
      "b.jsonl", "{\"doc_id\":\"x\",\"heading\":\"H\",\"body\":\"B\",\"id\":\"ignored\"}\n");
  struct src_options o;
  src_options_init(&o);
  o.id_field = "doc_id";
  o.title_field = "heading";
  o.text_field = "body";
  struct src_corpus c;
  char err[256];
  cr_assert_eq(load(p, &o, &c, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq(c.docs[0].id, "x");
  cr_assert_str_eq(c.docs[0].title, "H");
  cr_assert_str_eq(c.docs[0].text, "B");
  cr_assert_str_eq(json_string_value(json_object_get(c.docs[0].meta, "id")), "ignored");
  src_corpus_release(&c);
}

static void expect_fail(const char *content, int want_rc, const char *want_suffix) {
  const char *p = write_file("bad.jsonl", content);
  char path[256];
  snprintf(path, sizeof path, "%s", p);
  struct src_options o;
  src_options_init(&o);
  struct src_corpus c;
  char err[512];
  int rc = load(path, &o, &c, err, sizeof err);
  cr_assert_eq(rc, want_rc, "rc %d: %s", rc, err);
  char want[768];
  snprintf(want, sizeof want, "%s%s", path, want_suffix);
  cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got '%s', want prefix '%s'", err, want);
  cr_assert_eq(c.n, 0);
  cr_assert_null(c.docs);
}

Test(source, jsonl_bad_lines_name_file_line_field) {
  expect_fail("{\"text\":\"ok\"}\n\n{not json}\n", AD_EPARSE, ":3: invalid JSON at column");
  expect_fail("{\"text\":\"ok\"}\n{\"body\":\"x\"}\n", AD_EPARSE,
              ":2: missing string field 'text' (set sources.text_field");
  expect_fail("{\"text\":42}\n", AD_EPARSE, ":1: field 'text' is an integer, expected a string");
  expect_fail("[1,2]\n", AD_EPARSE, ":1: expected a JSON object per line");
  expect_fail("{\"id\":[1],\"text\":\"x\"}\n", AD_EPARSE,
              ":1: field 'id' is an array, expected a string or an integer");
  expect_fail("{\"id\":\"\",\"text\":\"x\"}\n", AD_EPARSE, ":1: field 'id' is an empty string");
  expect_fail("\n\n", AD_EINVAL, ": no documents found");
}

Test(source, duplicate_ids_are_an_error) {
  const char *p = write_file("d.jsonl",
                             "{\"id\":\"a\",\"text\":\"1\"}\n{\"id\":\"b\",\"text\":\"2\"}\n"
                             "{\"id\":\"a\",\"text\":\"3\"}\n");
  char path[256];
  snprintf(path, sizeof path, "%s", p);
  struct src_options o;
  src_options_init(&o);
  struct src_corpus c;
  char err[512], want[700];
  cr_assert_eq(load(path, &o, &c, err, sizeof err), AD_EEXISTS);
  snprintf(want, sizeof want, "duplicate source id 'a': %s:1 and %s:3", path, path);
  cr_assert_str_eq(err, want);
  o.stream = 1; /* the same check over an index's entries */
  cr_assert_eq(load(path, &o, &c, err, sizeof err), AD_EEXISTS);
  cr_assert_str_eq(err, want);
  o.stream = 0;
  /* a missing id defaults to the line number, which can collide with an explicit one */
  p = write_file("d2.jsonl", "{\"id\":\"2\",\"text\":\"1\"}\n{\"text\":\"2\"}\n");
  cr_assert_eq(load(p, &o, &c, err, sizeof err), AD_EEXISTS);
}

Test(source, missing_path) {
  struct src_options o;
  src_options_init(&o);
  struct src_corpus c;
  char err[256];
  const char *missing = th_path(tmpdir, "no-such-dir/x.jsonl");
  cr_assert_eq(load(missing, &o, &c, err, sizeof err), AD_EIO);
  char want[512];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
  cr_assert_str_eq(err, want);
}

Test(source, folder_of_documents) {
  char sub[128];
  snprintf(sub, sizeof sub, "%s/docs", tmpdir);
  cr_assert_eq(mkdir(sub, 0755), 0);
  write_file("docs/b-paper.md", "\n---\nintro text\n\n## The Real Title  \nbody\n");
  write_file("docs/a-note.txt", "\n\n  First line here  \nsecond\n");
  write_file("docs/c.json", "{\"ignored\":true}");
  write_file("docs/.hidden.md", "# hidden");
  write_file("docs/bad-utf8.md", "caf\xc3 \xff ok");
  struct src_options o;
  src_options_init(&o);
  struct src_corpus c;
  char err[256];
  /* a document that is not UTF-8 text fails the load (on_invalid: fail, the default)... */
  cr_assert_eq(load(sub, &o, &c, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "docs/bad-utf8.md: the file is not valid UTF-8 at byte 3"), "%s", err);
  /* ...or is left out and counted (skip) */
  o.on_invalid = SRC_INVALID_SKIP;
  cr_assert_eq(load(sub, &o, &c, err, sizeof err), 0, "%s", err);
  cr_assert_eq(c.format, SRC_FORMAT_DIR);
  cr_assert_eq(c.n, 2);
  cr_assert_eq(c.n_invalid, 1);
  cr_assert(strstr(c.first_invalid, "bad-utf8.md"), "%s", c.first_invalid);
  cr_assert_str_eq(c.docs[0].id, "a-note");
  cr_assert_str_eq(c.docs[0].title, "First line here");
  cr_assert_str_eq(c.docs[1].id, "b-paper");
  cr_assert_str_eq(c.docs[1].title, "The Real Title");
  cr_assert_not_null(strstr(c.docs[1].file, "docs/b-paper.md"));
  cr_assert_eq(c.docs[0].line, 0);
  src_corpus_release(&c);
  /* a folder given with a trailing '/' names its files without a doubled one */
  char slash[160];
  snprintf(slash, sizeof slash, "%s/", sub);
  cr_assert_eq(load(slash, &o, &c, err, sizeof err), 0, "%s", err);
  char want[200];
  snprintf(want, sizeof want, "%s/a-note.txt", sub);
  cr_assert_str_eq(c.docs[0].file, want);
  src_corpus_release(&c);
  /* forcing the wrong format is an error */
  o.format = SRC_FORMAT_JSONL;
  cr_assert_eq(load(sub, &o, &c, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "is a folder"), "%s", err);
}

/* Bad records are not repaired silently: invalid UTF-8, raw NULs, random bytes, empty or
 * binary texts fail with file:line (on_invalid: fail), or are skipped and counted. */
Test(source, jsonl_invalid_records) {
  static const struct {
    const char *line, *why;
  } bad[] = {
      {"{\"text\":\"a\xff"
       "b\"}",
       "u.jsonl:2: the line is not valid UTF-8 at byte 11"},
      {"{\"text\":\"a\0b\"}", "u.jsonl:2: the line holds a NUL byte"},
      {"\x89PNG\x01\x02\x03", "u.jsonl:2: the line is not valid UTF-8"},
      {"{\"text\":\" \\n \"}", "u.jsonl:2: field 'text' is empty"},
      {"{\"text\":\"\\u0001\\u0002\\u0003abc\"}", "u.jsonl:2: field 'text' looks binary"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char body[256];
    int n = snprintf(body, sizeof body, "{\"id\":\"ok\",\"text\":\"fine\"}\n");
    size_t bl = strlen(bad[i].line);
    if (strchr(bad[i].why, 'N') && strstr(bad[i].why, "NUL")) bl = 12; /* the embedded NUL */
    memcpy(body + n, bad[i].line, bl);
    body[n + bl] = '\n';
    char path[160];
    snprintf(path, sizeof path, "%s/u.jsonl", tmpdir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(body, 1, (size_t)n + bl + 1, f), (size_t)n + bl + 1);
    fclose(f);
    struct src_options o;
    src_options_init(&o);
    struct src_corpus c;
    char err[256];
    cr_assert_eq(load(path, &o, &c, err, sizeof err), AD_EPARSE, "case %zu accepted", i);
    cr_assert(strstr(err, bad[i].why), "case %zu: %s", i, err);
    o.on_invalid = SRC_INVALID_SKIP;
    cr_assert_eq(load(path, &o, &c, err, sizeof err), 0, "case %zu: %s", i, err);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.n_invalid, 1);
    cr_assert(strstr(c.first_invalid, bad[i].why), "%s", c.first_invalid);
    src_corpus_release(&c);
  }
}

Test(source, truncate_on_word_boundary) {
  cr_assert_eq(src_truncate_len("hello world", 11, 20), 11);
  cr_assert_eq(src_truncate_len("hello world", 11, 0), 11);
  cr_assert_eq(src_truncate_len("hello world again", 17, 8), 5, "cut back to 'hello'");
  cr_assert_eq(src_truncate_len("hello world again", 17, 11), 11, "cut falls on the space");
  cr_assert_eq(src_truncate_len("abcdefghijklmnop", 16, 5), 5, "no space: hard cut");
  /* multi-byte characters: 5 chars of "ééééééé" = 10 bytes */
  const char *e = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
  cr_assert_eq(src_truncate_len(e, strlen(e), 5), 10);
  cr_assert_eq(src_utf8_chars(e, strlen(e)), 7);

  const char *p = write_file("t.jsonl",
                             "{\"id\":\"long\",\"text\":\"one two three four five six\"}\n"
                             "{\"id\":\"short\",\"text\":\"tiny\"}\n");
  struct src_options o;
  src_options_init(&o);
  o.max_chars = 12;
  struct src_corpus c;
  char err[256];
  cr_assert_eq(load(p, &o, &c, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq(c.docs[0].text, "one two");
  cr_assert_eq(c.docs[0].text_len, 7);
  cr_assert_eq(c.docs[0].truncated, 1);
  cr_assert_eq(c.docs[0].orig_chars, 27);
  cr_assert_eq(c.docs[1].truncated, 0);
  cr_assert_eq(c.n_truncated, 1);
  char sha_trunc[65];
  memcpy(sha_trunc, c.sha256, 65);
  src_corpus_release(&c);
  o.max_chars = 0;
  cr_assert_eq(load(p, &o, &c, err, sizeof err), 0);
  cr_assert_str_eq(c.docs[0].text, "one two three four five six");
  cr_assert_str_eq(c.sha256, sha_trunc, "the corpus hash is over texts as read");
  src_corpus_release(&c);
}

static char *order_of(const char *path, int shuffle, uint64_t seed, size_t limit, char *sha) {
  struct src_options o;
  src_options_init(&o);
  o.shuffle = shuffle;
  o.shuffle_seed = seed;
  o.limit = limit;
  struct src_corpus c;
  char err[256];
  cr_assert_eq(load(path, &o, &c, err, sizeof err), 0, "%s", err);
  static char buf[2048];
  buf[0] = '\0';
  for (size_t i = 0; i < c.n; i++) {
    strcat(buf, c.docs[i].id);
    strcat(buf, ",");
  }
  if (sha) memcpy(sha, c.sha256, 65);
  cr_assert_eq(c.n_read, 40);
  src_corpus_release(&c);
  return strdup(buf);
}

Test(source, shuffle_is_seeded_and_limit_applies_after) {
  char content[4096] = "";
  for (int i = 0; i < 40; i++) {
    char line[64];
    snprintf(line, sizeof line, "{\"id\":\"d%02d\",\"text\":\"t%d\"}\n", i, i);
    strcat(content, line);
  }
  char path[256];
  snprintf(path, sizeof path, "%s", write_file("s.jsonl", content));
  char sha0[65], sha1[65];
  char *plain = order_of(path, 0, 0, 0, sha0);
  char *a = order_of(path, 1, 42, 0, sha1);
  char *b = order_of(path, 1, 42, 0, NULL);
  char *other = order_of(path, 1, 43, 0, NULL);
  char *lim = order_of(path, 1, 42, 5, NULL);
  cr_assert(strncmp(plain, "d00,d01,d02,", 12) == 0);
  cr_assert_str_eq(a, b, "same seed, same order");
  cr_assert_str_neq(a, plain);
  cr_assert_str_neq(a, other, "another seed, another order");
  cr_assert_eq(strncmp(a, lim, strlen(lim)), 0, "limit keeps the first N of the shuffled order");
  cr_assert_eq(strlen(lim), 5 * 4);
  cr_assert_str_eq(sha0, sha1, "hash independent of shuffle");
  free(plain);
  free(a);
  free(b);
  free(other);
  free(lim);
}

/* A streamed corpus (`autodata run`): the same index as a full load (ids, titles, corpus hash,
 * truncation, shuffle and limit), texts and meta read on demand exactly as a full load keeps
 * them, in a document src_doc_open() makes and src_doc_close() frees, and a record that changed
 * since it was indexed is refused. */
static void same_as_full_load(const char *path, size_t max_chars, int shuffle) {
  struct src_options o;
  src_options_init(&o);
  o.max_chars = max_chars;
  o.shuffle = shuffle;
  o.limit = 4;
  struct src_corpus full, idx;
  char err[256];
  cr_assert_eq(load(path, &o, &full, err, sizeof err), 0, "%s", err);
  o.stream = 1;
  cr_assert_eq(load(path, &o, &idx, err, sizeof err), 0, "%s", err);
  cr_assert_eq(idx.n, full.n);
  cr_assert_null(idx.docs, "an index holds entries, not documents");
  cr_assert_str_eq(idx.sha256, full.sha256);
  cr_assert_eq(idx.n_truncated, full.n_truncated);
  for (size_t i = 0; i < idx.n; i++) {
    struct src_doc *f = &full.docs[i], *d = NULL, *g = NULL;
    cr_assert_str_eq(src_corpus_id(&idx, i), f->id);
    cr_assert_str_eq(src_corpus_id(&full, i), f->id);
    cr_assert_str_eq(src_corpus_title(&idx, i), f->title);
    char a[65], b[65], c[65];
    src_corpus_sha256_hex(&idx, i, a);
    src_corpus_sha256_hex(&full, i, b);
    cr_assert_str_eq(a, b);
    cr_assert_eq(src_doc_open(&full, i, &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g, f, "a corpus that is not streamed lends its own document");
    src_doc_close(&full, g);
    cr_assert_eq(src_doc_open(&idx, i, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d->index, i);
    cr_assert_str_eq(d->id, f->id);
    cr_assert_str_eq(d->title, f->title);
    cr_assert_str_eq(d->text, f->text);
    cr_assert_eq(d->text_len, f->text_len);
    cr_assert_eq(d->truncated, f->truncated);
    cr_assert_eq(d->orig_chars, f->orig_chars);
    cr_assert_eq(d->line, f->line);
    cr_assert((!d->file && !f->file) || !strcmp(d->file, f->file));
    cr_assert(json_equal(d->meta, f->meta) || (!d->meta && !f->meta));
    sha256_hex(d->text, d->text_len, c); /* the text read again is the one indexed */
    cr_assert_str_eq(c, b);
    src_doc_close(&idx, d); /* ASan: nothing left behind */
  }
  src_corpus_release(&full);
  src_corpus_release(&idx);
}

Test(source, streamed_corpus_reads_texts_on_demand) {
  const char *p = write_file(
      "s.jsonl",
      "{\"id\":\"a\",\"title\":\"A\",\"text\":\"alpha beta gamma delta\",\"k\":1}\n"
      "{\"id\":\"b\",\"text\":\"b\\u00e9ta \\u2713 long text here\"}\n"
      "\n"
      "{\"id\":\"c\",\"text\":\"gamma\",\"title\":\"C\"}\n"
      "{\"id\":\"d\",\"text\":\"delta delta delta delta\"}\n"
      "{\"id\":\"e\",\"text\":\"epsilon\"}");
  same_as_full_load(p, 0, 0);
  same_as_full_load(p, 8, 1);
  write_file("d1.txt", "# Title one\nbody one is here\n");
  write_file("d2.md", "second document, longer than ten characters\n");
  same_as_full_load(tmpdir, 10, 0);
  same_as_full_load(tmpdir, 10, 1);
  /* the file changes under the index */
  struct src_options o;
  src_options_init(&o);
  o.stream = 1;
  struct src_corpus c;
  char err[256];
  cr_assert_eq(load(p, &o, &c, err, sizeof err), 0, "%s", err);
  write_file("s.jsonl",
             "{\"id\":\"a\",\"title\":\"A\",\"text\":\"ALPHA beta gamma delta\",\"k\":1}\n");
  struct src_doc *d = (struct src_doc *)&c;
  cr_assert_eq(src_doc_open(&c, 0, &d, err, sizeof err), AD_EMISMATCH);
  cr_assert_null(d);
  cr_assert(strstr(err, "changed") && strstr(err, "'a'"), "%s", err);
  cr_assert_neq(src_doc_open(&c, 3, &d, err, sizeof err), 0, "past the end of the file");
  cr_assert_null(d);
  src_corpus_release(&c);
}

Test(source, streamed_corpus_keeps_named_sources) {
  const char *p = write_file("k.jsonl",
                             "{\"id\":\"a\",\"title\":\"A\",\"text\":\"one\"}\n"
                             "{\"id\":\"b\",\"title\":\"B\",\"text\":\"two\"}\n"
                             "{\"id\":\"c\",\"title\":\"C\",\"text\":\"three\"}\n");
  for (int stream = 0; stream < 2; stream++) {
    struct src_options o;
    src_options_init(&o);
    o.stream = stream;
    struct src_corpus c;
    char err[256];
    cr_assert_eq(load(p, &o, &c, err, sizeof err), 0, "%s", err);
    const char *none[] = {"a", "zz"};
    cr_assert_eq(src_corpus_keep(&c, none, 2, err, sizeof err), AD_ENOTFOUND);
    cr_assert(strstr(err, "'zz'"), "%s", err);
    cr_assert_eq(c.n, 3, "unchanged");
    const char *ids[] = {"c", "a", "c"};
    cr_assert_eq(src_corpus_keep(&c, ids, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(src_corpus_id(&c, 0), "c");
    cr_assert_str_eq(src_corpus_id(&c, 1), "a");
    cr_assert_str_eq(src_corpus_title(&c, 0), "C");
    cr_assert_str_eq(src_corpus_title(&c, 1), "A");
    struct src_doc *d;
    cr_assert_eq(src_doc_open(&c, 1, &d, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(d->text, "one");
    cr_assert_eq(d->index, 1);
    src_doc_close(&c, d);
    src_corpus_release(&c);
  }
}

static ino_t inode_of(const char *path) {
  struct stat sb;
  return stat(path, &sb) ? 0 : sb.st_ino;
}

/* The same index, read through the cache or not (the corpus file is unchanged). */
static void same_index(const struct src_corpus *a, const struct src_corpus *b) {
  cr_assert_eq(a->n, b->n);
  cr_assert_str_eq(a->sha256, b->sha256);
  cr_assert_eq(a->n_truncated, b->n_truncated);
  cr_assert_eq(a->n_invalid, b->n_invalid);
  cr_assert_str_eq(a->first_invalid, b->first_invalid);
  char err[256];
  for (size_t i = 0; i < a->n; i++) {
    cr_assert_str_eq(src_corpus_id(a, i), src_corpus_id(b, i));
    cr_assert_str_eq(src_corpus_title(a, i), src_corpus_title(b, i));
    struct src_doc *x, *y;
    cr_assert_eq(src_doc_open(a, i, &x, err, sizeof err), 0, "%s", err);
    cr_assert_eq(src_doc_open(b, i, &y, err, sizeof err), 0, "%s", err);
    cr_assert(x->offset == y->offset && x->rec_len == y->rec_len && x->line == y->line);
    cr_assert(x->text_len == y->text_len && x->orig_chars == y->orig_chars);
    cr_assert_eq(x->truncated, y->truncated);
    cr_assert_eq(memcmp(x->sha, y->sha, sizeof x->sha), 0);
    cr_assert_str_eq(x->text, y->text);
    src_doc_close(a, x);
    src_doc_close(b, y);
  }
}

/* Change the cache file: put `with` (n bytes) at offset (from the end when negative). */
static void poke(const char *path, long offset, const char *with, size_t n) {
  FILE *f = fopen(path, "r+b");
  cr_assert(f && !fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET));
  cr_assert(fwrite(with, 1, n, f) == n && !fclose(f));
}

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) ? -1 : (long)sb.st_size;
}

Test(source, index_cache_is_used_only_while_it_matches) {
  const char *p = write_file("c.jsonl",
                             "{\"id\":\"a\",\"title\":\"A\",\"text\":\"alpha beta gamma\"}\n"
                             "not json\n"
                             "{\"id\":\"b\",\"text\":\"b\\u00e9ta text\"}\n");
  struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
  cr_assert_eq(utimensat(AT_FDCWD, p, old, 0), 0);
  char cache[256];
  snprintf(cache, sizeof cache, "%s", th_path(tmpdir, "c.idx"));
  struct src_options o;
  src_options_init(&o);
  o.stream = 1;
  o.max_chars = 8;
  o.on_invalid = SRC_INVALID_SKIP;
  struct src_corpus plain, first, again;
  char err[256];
  cr_assert_eq(load(p, &o, &plain, err, sizeof err), 0, "%s", err);
  o.index_cache = cache;
  cr_assert_eq(load(p, &o, &first, err, sizeof err), 0, "%s", err);
  ino_t ino = inode_of(cache);
  cr_assert_neq(ino, 0, "the cache is written");
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", cache);
  cr_assert_eq(inode_of(tmp), 0, "no temporary file left");
  long size = file_size(cache);
  /* the format: a header, 64 bytes per entry, the ids and titles, a 32-digit trailer */
  cr_assert_eq(size, 696 + 2 * 64 + 7 + 32); /* "a\0A\0b\0\0" */
  cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err);
  cr_assert_eq(inode_of(cache), ino, "a matching cache is read, not written again");
  same_index(&plain, &first);
  same_index(&plain, &again);
  cr_assert_eq(again.n_invalid, 1);
  struct src_doc *d;
  cr_assert_eq(src_doc_open(&again, 1, &d, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq(d->text, "b\xc3\xa9ta");
  src_doc_close(&again, d);
  src_corpus_release(&again);
  /* other options: read from the corpus and written again */
  o.max_chars = 0;
  cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err);
  cr_assert_neq(inode_of(cache), ino, "other options do not use the cache");
  cr_assert_eq(again.n_truncated, 0);
  src_corpus_release(&again);
  o.max_chars = 8;
  /* a damaged cache is not trusted: an entry, the trailer, a short file, an old format */
  struct {
    long at;
    const char *with;
    size_t n;
  } damage[] = {{700, "#", 1}, {-1, "g", 1}, {-20, "x", 1}, {0, "ADSRCIX1", 8}};
  for (size_t k = 0; k < sizeof damage / sizeof *damage + 1; k++) {
    cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err); /* a good cache */
    src_corpus_release(&again);
    ino = inode_of(cache);
    if (k < sizeof damage / sizeof *damage) poke(cache, damage[k].at, damage[k].with, damage[k].n);
    else cr_assert_eq(truncate(cache, file_size(cache) - 1), 0);
    cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err);
    same_index(&plain, &again);
    cr_assert_neq(inode_of(cache), ino, "a damaged cache (%zu) is written again", k);
    cr_assert_eq(file_size(cache), size);
    src_corpus_release(&again);
  }
  /* the corpus changed in place (same size, same modification time): its change time differs,
   * so the cache is not used; a document opened from an index read before is refused */
  cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err);
  ino = inode_of(cache);
  sleep(1); /* a later change time */
  p = write_file("c.jsonl",
                 "{\"id\":\"a\",\"title\":\"A\",\"text\":\"ALPHA beta gamma\"}\n"
                 "not json\n"
                 "{\"id\":\"b\",\"text\":\"b\\u00e9ta text\"}\n");
  cr_assert_eq(utimensat(AT_FDCWD, p, old, 0), 0);
  cr_assert_eq(src_doc_open(&again, 0, &d, err, sizeof err), AD_EMISMATCH, "%s", err);
  struct src_corpus changed;
  cr_assert_eq(load(p, &o, &changed, err, sizeof err), 0, "%s", err);
  cr_assert_str_neq(changed.sha256, again.sha256, "read from the changed corpus");
  cr_assert_neq(inode_of(cache), ino, "and the cache written again");
  cr_assert_eq(src_doc_open(&changed, 0, &d, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq(d->text, "ALPHA");
  src_doc_close(&changed, d);
  src_corpus_release(&changed);
  src_corpus_release(&again);
  /* a corpus changed in the last seconds: no cache written */
  unlink(cache);
  write_file("c.jsonl", "{\"id\":\"a\",\"text\":\"new text\"}\n");
  cr_assert_eq(load(p, &o, &again, err, sizeof err), 0, "%s", err);
  cr_assert_eq(inode_of(cache), 0, "a corpus that just changed is not indexed in the cache");
  cr_assert_eq(again.n, 1);
  src_corpus_release(&again);
  src_corpus_release(&plain);
  src_corpus_release(&first);
}

Test(source, dropped_titles_come_back_with_the_text) {
  const char *p = write_file("t.jsonl",
                             "{\"id\":\"a\",\"title\":\"Alpha \\u00e9\",\"text\":\"one two\"}\n"
                             "{\"id\":\"b\",\"text\":\"three four\"}\n");
  write_file("d1.md", "# Heading one\nbody text here\n");
  write_file("d2.txt", "plain first line\nand more\n");
  const char *paths[] = {p, tmpdir};
  const char *titles[][2] = {{"Alpha \xc3\xa9", ""}, {"Heading one", "plain first line"}};
  for (int k = 0; k < 2; k++) {
    struct src_options o;
    src_options_init(&o);
    o.stream = 1;
    struct src_corpus c;
    char err[256];
    cr_assert_eq(load(paths[k], &o, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(src_corpus_title(&c, 0), titles[k][0]);
    struct src_doc *d0, *d1;
    cr_assert_eq(src_doc_open(&c, 1, &d1, err, sizeof err), 0, "%s", err);
    size_t before = c.names_len;
    src_corpus_drop_titles(&c);
    cr_assert_lt(c.names_len, before, "the titles' bytes are freed");
    cr_assert_null(src_corpus_title(&c, 0), "dropped");
    cr_assert_str_eq(src_corpus_id(&c, 1), k ? "d2" : "b", "the ids stay");
    cr_assert_str_eq(d1->title, titles[k][1], "an open document keeps its title");
    src_doc_close(&c, d1);
    cr_assert_eq(src_doc_open(&c, 0, &d0, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(d0->title, titles[k][0], "read again with the text");
    cr_assert_eq(src_doc_open(&c, 1, &d1, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(d1->title, titles[k][1]);
    src_doc_close(&c, d0);
    src_corpus_release(&c); /* d1 outlives its corpus's index */
    src_doc_close(&(struct src_corpus){.stream = 1}, d1);
  }
}
