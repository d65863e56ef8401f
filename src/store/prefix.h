/* prefix.h - the prefix share of a run's prompts (store-internal; store.c uses it).
 *
 * Servers with automatic prefix caching (vLLM, SGLang) reuse the computation of a
 * prompt's start when it repeats the start of an earlier request to the same model. The
 * store measures how much of each request could be reused that way:
 *
 *   prefix tokens of a call = prompt_tokens x L / M, where M is the length of the
 *   request's "messages" array as stored (canonical JSON text) and L the length of its
 *   longest common prefix with the messages of the previous request to the same endpoint
 *   and model - the previous one for the same source, or the previous one of any source,
 *   whichever shares more.
 *
 * Comparing with those two requests only (not every earlier one) keeps it to one pass
 * over each request, in bounded memory (a fixed table of the last request per endpoint,
 * model and source, a colliding entry replacing the older one): the figure is a lower
 * bound of what a cache that keeps everything would reuse. Cache hits are not model
 * calls and count nothing. Not thread-safe (one store handle, one thread).
 */
#ifndef AD_STORE_PREFIX_H
#define AD_STORE_PREFIX_H

#include <stddef.h>
#include <stdint.h>

struct store_prefix;

/* A new, empty tracker (never NULL: allocation failure aborts). */
struct store_prefix *store_prefix_new(void);
void store_prefix_free(struct store_prefix *p);

/* The "messages" array inside a request body's JSON text: 0 with its offset and length,
 * or -1 when there is none (or the text is cut off). Pure. */
int store_prefix_messages(const char *body, size_t n, size_t *off, size_t *len);

/* The prefix tokens of a call (see above), remembering its messages for the next ones.
 * request may be NULL (0 is returned). */
int64_t store_prefix_tokens(struct store_prefix *p, const char *endpoint, const char *model,
                            const char *source_id, const char *request, size_t request_len,
                            int64_t prompt_tokens);

#endif
