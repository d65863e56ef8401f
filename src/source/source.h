/* source.h - source readers: a JSONL file or a folder of .txt/.md documents.
 *
 * src_load() reads a whole corpus into memory, validates it and applies the
 * recipe's options in this order: read (file order; folders sorted by name) ->
 * corpus hash -> duplicate-id check -> optional seeded shuffle (Fisher-Yates with
 * util/rng.h) -> limit -> truncation of each text at max_chars on a word boundary.
 *
 * JSONL: one JSON object per line; blank lines skipped; a line longer than
 * AD_MAX_LINE, a line that is not a JSON object, or an object without a string
 * text field is an error naming "file:line" (and the field). The id field may be
 * a string or an integer; when missing the id is the line number ("17"). The
 * title field is optional (""). Other members are kept in `meta`.
 * Folder: every regular *.txt / *.md file (not recursive, hidden files skipped),
 * sorted by byte order of the name; id = file name without extension; title = the
 * first markdown heading ("# Title") in the first 50 lines, else the first
 * non-blank line (at most 200 bytes).
 * Invalid records: a JSONL line that is not a JSON object with a string text field,
 * bytes that are not UTF-8, raw NUL bytes, a text that is empty (white space only) or
 * binary (control characters); a folder document that is not UTF-8 text, holds a NUL, is
 * empty or binary. on_invalid = SRC_INVALID_FAIL (the default) stops at the first with
 * "file:line: why" (AD_EPARSE); SRC_INVALID_SKIP leaves them out and counts them
 * (src_corpus.n_invalid, the first one's message in first_invalid). Duplicate ids and
 * over-long lines are errors under either policy.
 *
 * Errors are returned as AD_E* codes with a message the user can act on in err.
 * Not thread-safe per corpus; independent corpora may be loaded concurrently.
 */
#ifndef AD_SOURCE_H
#define AD_SOURCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum src_format { SRC_FORMAT_AUTO = 0, SRC_FORMAT_JSONL, SRC_FORMAT_DIR };

/* Name of a format ("auto", "jsonl", "dir"). */
const char *src_format_name(enum src_format f);

struct src_options {
  const char *path;        /* .jsonl file or folder (borrowed) */
  enum src_format format;  /* AUTO: a folder -> DIR, anything else -> JSONL */
  const char *id_field;    /* default "id" */
  const char *title_field; /* default "title" */
  const char *text_field;  /* default "text" */
  size_t max_chars;        /* characters (code points) kept per text; 0 = no cap; default 20000 */
  size_t limit;            /* documents kept after the shuffle; 0 = all */
  int shuffle;             /* 0/1 */
  uint64_t shuffle_seed;   /* used when shuffle = 1 */
  int on_invalid;          /* SRC_INVALID_FAIL (default) or SRC_INVALID_SKIP */
  size_t read_max;         /* stop after this many records (validate's sample); 0 = all */
  int stream;              /* 1: index the corpus (about 64 bytes per document and its id): a
                 document's text is read by src_doc_open() and freed by src_doc_close()
                 (memory for the index and the documents in flight: `autodata run`) */
  const char *index_cache; /* stream, JSONL: a file that keeps the index (NULL: none). When it
                 matches the corpus file (device, inode, size, modification and change times,
                 to the nanosecond) and these options, the index is read from it instead of
                 the corpus; else the corpus is read and the file (re)written, unless the
                 corpus changed while it was read or was modified in the last 2 seconds (a change within
                 the same timestamp could go unseen). Git's index trusts the same fields. */
};
enum { SRC_INVALID_FAIL = 0, SRC_INVALID_SKIP };
/* Under skip, a corpus whose first this many records are all invalid is an error all the same
 * (a binary file or a device, not a text corpus with a few bad records). */
#define SRC_SKIP_GIVE_UP 1000
/* Defaults: AUTO, "id"/"title"/"text", max_chars 20000, limit 0, no shuffle, seed 1. */
void src_options_init(struct src_options *o);

struct src_doc {
  char *id;          /* unique within the corpus */
  char *title;       /* "" when none */
  char *text;        /* valid UTF-8, NUL-terminated, possibly truncated */
  size_t text_len;   /* bytes of text */
  size_t orig_chars; /* characters before truncation */
  int truncated;     /* 1 when text was cut at max_chars */
  long line;         /* JSONL line number (1-based); 0 for folder documents */
  char *file;        /* folder documents: the file's path; NULL for JSONL */
  json_t *meta;      /* JSONL: the other members of the object (new ref); NULL otherwise */
  size_t index;      /* its place in the corpus (in use order) */
  /* stream: where the record is, and the SHA-256 of text (as kept, after truncation) */
  long long offset;      /* JSONL: the line's first byte */
  size_t rec_len;        /* JSONL: the line's bytes */
  unsigned char sha[32]; /* set when the corpus is streamed */
};

struct src_ent; /* a streamed corpus's entry (source.c): 64 bytes per document */

/* Use the accessors below rather than docs[], which only a corpus that is not streamed has. */
struct src_corpus {
  struct src_doc *docs; /* not streamed: n documents, in use order (after shuffle and limit) */
  struct src_ent *ents; /* streamed: n entries, in use order; texts read by src_doc_open() */
  size_t n;
  size_t n_read;           /* documents read before the limit */
  size_t n_truncated;      /* of the n kept */
  enum src_format format;  /* the format actually read */
  size_t n_invalid;        /* invalid records skipped (on_invalid: skip) */
  char first_invalid[512]; /* "file:line: why" of the first skipped one; "" when none */
  char sha256[65];         /* SHA-256 over "id\0text\0" of every document read, in
                             reading order, texts as read (after UTF-8 repair, before
                             truncation), before shuffle and limit */
  int stream;              /* an index of entries (ents), no texts */
  char *names;             /* stream: the entries' ids (a folder document's path; the titles
                              until src_corpus_drop_titles()), one array */
  size_t names_len;
  int titles_dropped; /* stream: titles are read with the text (src_doc_open) */
  char *path, *id_field, *title_field, *text_field; /* stream: where to read them (copies) */
};

/* The i-th document's id (i < c->n). */
const char *src_corpus_id(const struct src_corpus *c, size_t i);
/* Its title; NULL once a streamed corpus's titles were dropped. */
const char *src_corpus_title(const struct src_corpus *c, size_t i);
/* The SHA-256 of its text as kept, as 64 hex digits (streamed: from the index). */
void src_corpus_sha256_hex(const struct src_corpus *c, size_t i, char out[65]);
/* The i-th document with its text, title and meta, for as long as it is used (an episode):
 * streamed, a new struct src_doc filled from the entry and the record read again exactly as
 * src_load() would have kept it; else &c->docs[i]. 0, or AD_EIO / AD_EPARSE / AD_EMISMATCH (the
 * file changed since it was indexed) with the place in err, *out NULL. Close with
 * src_doc_close(). */
AD_WUR int src_doc_open(const struct src_corpus *c, size_t i, struct src_doc **out, char *err,
                        size_t errlen);
/* Free a document src_doc_open() made (a no-op for a corpus that is not streamed, or NULL). */
void src_doc_close(const struct src_corpus *c, struct src_doc *d);
/* Stream: free the index's titles (once the run has registered its sources, nothing needs
 * them until an episode starts): from now on src_corpus_title() is NULL and src_doc_open()
 * reads the title from the record with the text (the same derivation as the index's: the
 * title field or "", a folder document's heading). A no-op otherwise. */
void src_corpus_drop_titles(struct src_corpus *c);

/* Read a corpus. On success fills *out (free with src_corpus_release). On failure
 * *out is left empty and err holds e.g. "data/papers.jsonl:17: missing string
 * field 'text'". Returns 0, AD_EIO (cannot open/read), AD_EPARSE (bad line or
 * field), AD_EEXISTS (duplicate id, naming both places), AD_ETOOBIG (line over
 * AD_MAX_LINE), AD_EINVAL (bad options, e.g. empty folder). */
AD_WUR int src_load(const struct src_options *o, struct src_corpus *out, char *err, size_t errlen);
void src_corpus_release(struct src_corpus *c);
/* Keep only the documents whose ids are ids[0..n), in that order (the others are
 * freed). Returns 0, or AD_ENOTFOUND naming the first id the corpus does not hold
 * (the corpus is then unchanged). */
int src_corpus_keep(struct src_corpus *c, const char *const *ids, size_t n, char *err,
                    size_t errlen);

/* Byte length to keep of text[0..len) so that at most max_chars characters
 * remain, cutting at the last whitespace before the limit when there is one in
 * the last 20% (at least 100 bytes) of the kept part (else at the character
 * boundary). Trailing
 * whitespace of the kept part is dropped. Returns len when no cut is needed. */
size_t src_truncate_len(const char *text, size_t len, size_t max_chars);

/* Count UTF-8 characters (code points; invalid bytes count one each). */
size_t src_utf8_chars(const char *text, size_t len);

#endif
