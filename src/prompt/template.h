/* template.h - the prompt template engine (a small, strict mustache subset).
 *
 * Syntax (no HTML escaping anywhere):
 *   {{name}}            value of `name` in the current context, then in enclosing ones
 *   {{a.b.c}}           dotted path (object members; a numeric part indexes an array)
 *   {{.}}               the current context itself (inside a section over scalars)
 *   {{@index}}          0-based index of the current array element (inside a section)
 *   {{@number}}         1-based index of the current array element
 *   {{#name}}...{{/name}}  section: an array renders the body once per element with
 *                       the element as the context; a truthy scalar or non-empty
 *                       object renders once (an object becomes the context);
 *                       false / null / 0 / "" / [] / {} render nothing
 *   {{^name}}...{{/name}}  inverted section: renders once exactly when the section
 *                       would render nothing
 *   {{! comment }}      ignored
 * Values: strings are inserted verbatim; integers without decimals; reals with up
 * to 4 decimals, trailing zeros trimmed (0.5, 0.6667, 3); booleans true/false; null
 * renders as ""; arrays and objects render as compact JSON.
 * A standalone tag line (a section/inverted/close/comment tag alone on its line,
 * with only blanks around it) is removed with its newline, as mustache does.
 *
 * Errors: compile errors (unclosed or mismatched sections, empty or unterminated
 * tags) name "<name>:line:column"; render errors name the unknown variable and the
 * line:column of its tag. With TPL_LENIENT an unknown variable renders as "" and an
 * unknown section as empty.
 * Output is capped at AD_MAX_PROMPT bytes (AD_ETOOBIG).
 *
 * A compiled template is immutable: rendering it from several threads at once is safe.
 */
#ifndef AD_TEMPLATE_H
#define AD_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

typedef struct tpl tpl;

/* Render flags. */
#define TPL_LENIENT 1u /* unknown variables render as "" instead of failing */
/* Checking, not rendering for use: every section and inverted section body is
 * rendered once whatever its value (a list's body with its first element as the
 * context), so every tag is looked up. With sample values of the right shape this
 * finds every unknown variable before any real render (recipe_check_prompt()). */
#define TPL_CHECK 2u

/* Compile text[0..len) (need not be NUL-terminated). name is used in error
 * messages ("prompts/solver.md"); first_line is the line number of text[0] in
 * that file (1 for a whole file). On success *out is a new template the caller
 * frees with tpl_free(). Returns 0 or AD_EPARSE (message in err: "name:L:C: ..."). */
AD_WUR int tpl_compile(const char *text, size_t len, const char *name, int first_line, tpl **out,
                       char *err, size_t errlen);
void tpl_free(tpl *t);

/* Render with vars (an object; borrowed) appended to out (out's own limit also
 * applies; the output is capped at AD_MAX_PROMPT). Returns 0, AD_ENOTFOUND (unknown
 * variable: "name:L:C: unknown variable 'x'"), AD_ETOOBIG (output or work past its
 * cap), AD_EINVAL (no template or out; a value that contains itself). On error out
 * may hold partial output. */
AD_WUR int tpl_render(const tpl *t, const json_t *vars, struct buf *out, char *err, size_t errlen);
AD_WUR int tpl_render_ex(const tpl *t, const json_t *vars, unsigned flags, struct buf *out,
                         char *err, size_t errlen);

/* The top-level variable names the template refers to (first path component of
 * every tag, excluding '.', '@index', '@number'), as a new JSON array of unique
 * strings in first-use order. For documentation and validation. */
json_t *tpl_variables(const tpl *t);

/* ---- Prompt files ---------------------------------------------------------
 * A prompt file holds a system and a user message:
 *
 *   === system ===        (optional line)
 *   You are ...           system message template
 *   === user ===
 *   Question: {{question}} user message template
 *
 * Text before a line "=== user ===" is the system message (an optional leading
 * "=== system ===" line is dropped); the rest is the user message. A file without
 * "=== user ===" is all user message and has no system part. The marker lines
 * must match exactly (surrounding blanks allowed). Leading/trailing blank lines of
 * each part are trimmed. Line numbers in errors are those of the file. */
struct tpl_prompt {
  tpl *system; /* NULL when the file has no system part */
  tpl *user;   /* never NULL after a successful compile */
};

AD_WUR int tpl_prompt_compile(const char *text, size_t len, const char *name,
                              struct tpl_prompt *out, char *err, size_t errlen);
void tpl_prompt_release(struct tpl_prompt *p);

/* Render both parts into a new Chat Completions messages array:
 * [{"role":"system","content":...}, {"role":"user","content":...}] (system omitted
 * when absent or rendered empty). system_override, when non-NULL, replaces the
 * file's system part (a recipe's separate system_prompt file). Returns 0 and sets
 * *messages (new reference), or an error as tpl_render_ex. */
AD_WUR int tpl_prompt_render(const struct tpl_prompt *p, const tpl *system_override,
                             const json_t *vars, unsigned flags, json_t **messages, char *err,
                             size_t errlen);

#endif
