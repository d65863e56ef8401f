/* extract.h - pull one JSON value out of messy model text.
 *
 * Models wrap JSON in code fences, put prose before and after it, emit several
 * objects, leave trailing commas, prepend a UTF-8 BOM or a <think>...</think>
 * reasoning block, or stop mid-object. extract_json() copes with all of these
 * and never invents content: a reply cut off inside the object is reported as
 * truncated, not completed.
 *
 * Rules, in order:
 *   1. a leading BOM is skipped; leading <think>...</think> blocks are skipped
 *      (an unterminated one is "reply truncated inside a <think> block"); when
 *      the reply has a "</think>" without an opening tag (chat templates that
 *      put <think> in the prompt) the text after the first "</think>" is used;
 *   2. every '{' (and '[' with EXTRACT_ALLOW_ARRAY) is a candidate start; its
 *      end is found by a JSON-aware scan (strings and escapes respected, so
 *      braces inside strings do not count);
 *   3. a balanced candidate is parsed with jansson; if that fails, once more
 *      with trailing commas removed (",}" / ",]" outside strings);
 *   4. the first parsed object that has every key in `keys` wins; when no
 *      object has them all (or keys is NULL) the first parsed value is
 *      returned - unless it is nested inside an earlier JSON-looking object
 *      that never closes, which is reported as truncation.
 * No // comments, smart quotes or single quotes are repaired.
 *
 * Cost: at most EXTRACT_MAX_STARTS candidate starts are scanned, so the work
 * is O(EXTRACT_MAX_STARTS * len) on any input. Pure function, thread-safe.
 */
#ifndef AD_EXTRACT_H
#define AD_EXTRACT_H

#include <jansson.h>
#include <stddef.h>

#define EXTRACT_MAX_STARTS 48
#define EXTRACT_ALLOW_ARRAY 0x1 /* a top-level array may be returned too */

/* Extract one JSON object (or array with EXTRACT_ALLOW_ARRAY) from text[0..len).
 * text may contain NUL bytes and invalid UTF-8. keys: NULL-terminated list of
 * member names that identify the wanted object, or NULL.
 * Returns a new reference; on failure returns NULL and writes to err (when
 * errlen > 0) a message meant to be shown to the model in a repair turn, e.g.
 *   "expected a JSON object; found prose starting 'Sure, here is'"
 *   "reply truncated: unbalanced braces at byte 12 (the object opened there never closes)"
 *   "invalid JSON at byte 40: '}' expected near '\"weight\"'"
 *   "empty reply" */
json_t *extract_json(const char *text, size_t len, const char *const *keys, int flags, char *err,
                     size_t errlen);

/* Shorthand: extract_json(text, strlen(text), keys, 0, err, errlen). */
json_t *extract_json_object(const char *text, const char *const *keys, char *err, size_t errlen);

/* The part of a reply after its reasoning: skips a BOM and leading
 * <think>...</think> blocks (or everything up to the first "</think>" when the
 * opening tag is absent). Returns a pointer into text and sets *rest_len.
 * An unterminated leading <think> block yields an empty rest (rest_len 0). */
const char *extract_skip_think(const char *text, size_t len, size_t *rest_len);

/* A solver's final answer: its reply after the reasoning (extract_skip_think), without
 * leading whitespace. NULL (*rest_len 0) when the reply opens a <think> block it never
 * closes: it stopped while still reasoning, so it has no answer to grade. */
const char *extract_final_text(const char *text, size_t len, size_t *rest_len);

#endif
