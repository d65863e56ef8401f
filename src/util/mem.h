/* mem.h - allocation, and autodata's out-of-memory policy.
 *
 * Policy: running out of memory is not an error autodata recovers from. Every
 * allocation goes through this family (or through jansson, whose allocator is set
 * to it by mem_init()), and a failed allocation prints one line on stderr and
 * aborts. Nothing is lost by that: the store is crash-safe by design (kill -9 at any
 * instant resumes to the same dataset), and a resume replays every answered call
 * from the cache. So callers never check these for NULL, and no code path silently
 * drops data because an allocation failed. AD_ENOMEM remains only for limits that
 * are not the allocator's (a library such as SQLite reporting its own NOMEM).
 *
 * The string helpers return NULL only for a NULL input (xstrdup(NULL) == NULL), so
 * optional strings can be copied without a test.
 */
#ifndef AD_MEM_H
#define AD_MEM_H

#include <stdarg.h>
#include <stddef.h>

#include "util/err.h"

/* Route jansson's allocations through xmalloc (call once, before any json_t is made;
 * idempotent). */
void mem_init(void);

/* Print "autodata: out of memory (<n> bytes)" on stderr and abort. */
_Noreturn void mem_oom(size_t n);

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Owned copy of s; NULL when s is NULL. */
char *xstrdup(const char *s);
/* Owned copy of the n bytes at s, NUL-terminated (s may hold NULs; n may be 0). */
char *xstrndup(const char *s, size_t n);
/* printf into a new owned string. */
char *xasprintf(const char *fmt, ...) AD_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap);

/* Replace *dst (freed) with an owned copy of s (NULL allowed). */
void xset_str(char **dst, const char *s);

/* Give the heap's free pages back to the system (glibc's malloc_trim; a no-op elsewhere).
 * For the turn between two phases with different working sets: a loop's heap, freed, keeps
 * its pages resident and scattered, while the next phase's large buffers are mapped anew,
 * so without this the process holds both (`autodata run`: the loop, then the outputs). */
void mem_release_free(void);

#endif
