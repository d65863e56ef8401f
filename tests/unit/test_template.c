/* test_template.c - the prompt template engine: variables, paths, sections,
 * inverted sections, @index/@number, comments, errors with positions, the cap,
 * and prompt files split into system/user parts. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "prompt/template.h"
#include "util/buf.h"

/* Compile + render; returns the render rc and fills out/err. */
static int render(const char *text, const char *vars_json, unsigned flags, char **out, char *err,
                  size_t errlen) {
  tpl *t = NULL;
  int rc = tpl_compile(text, strlen(text), "t.md", 1, &t, err, errlen);
  if (rc) {
    *out = NULL;
    return rc;
  }
  json_error_t je;
  json_t *vars = vars_json ? json_loads(vars_json, 0, &je) : NULL;
  if (vars_json) cr_assert_not_null(vars, "bad test JSON: %s", je.text);
  struct buf b = BUF_INIT;
  rc = tpl_render_ex(t, vars, flags, &b, err, errlen);
  *out = buf_take(&b, NULL);
  json_decref(vars);
  tpl_free(t);
  return rc;
}

static void expect(const char *text, const char *vars, const char *want) {
  char err[256], *out;
  int rc = render(text, vars, 0, &out, err, sizeof err);
  cr_assert_eq(rc, 0, "render failed: %s", err);
  cr_assert_str_eq(out, want);
  free(out);
}

static void expect_err(const char *text, const char *vars, int want_rc, const char *want_err) {
  char err[256], *out;
  int rc = render(text, vars, 0, &out, err, sizeof err);
  cr_assert_eq(rc, want_rc, "rc %d, err '%s'", rc, err);
  cr_assert_str_eq(err, want_err);
  free(out);
}

Test(template, variables_and_formatting) {
  expect("Q: {{q}}!", "{\"q\":\"why <b>?\"}", "Q: why <b>?!");
  expect("{{i}} {{r}} {{h}} {{w}} {{t}} {{f}} [{{n}}]",
         "{\"i\":42,\"r\":0.5,\"h\":0.6666666,\"w\":3.0,\"t\":true,\"f\":false,\"n\":null}",
         "42 0.5 0.6667 3 true false []");
  expect("{{ spaced }}", "{\"spaced\":\"ok\"}", "ok");
  expect("{{neg}}", "{\"neg\":-0.00001}", "0");
  expect("{{a}}", "{\"a\":[1,\"x\"]}", "[1,\"x\"]");
  expect("no tags at all", NULL, "no tags at all");
  expect("", NULL, "");
}

Test(template, dotted_paths) {
  expect("{{a.b.c}}/{{list.1}}", "{\"a\":{\"b\":{\"c\":\"deep\"}},\"list\":[\"x\",\"y\"]}",
         "deep/y");
}

Test(template, sections_over_lists) {
  expect("{{#xs}}{{@index}}:{{.}} {{/xs}}", "{\"xs\":[\"a\",\"b\",\"c\"]}", "0:a 1:b 2:c ");
  expect(
      "{{#rubric}}{{@number}}. {{criterion}} (w={{weight}})\n{{/rubric}}",
      "{\"rubric\":[{\"criterion\":\"States X\",\"weight\":5},{\"criterion\":\"Y\",\"weight\":2}]}",
      "1. States X (w=5)\n2. Y (w=2)\n");
  /* outer names stay visible inside a section */
  expect("{{#xs}}{{name}}-{{.}};{{/xs}}", "{\"name\":\"n\",\"xs\":[1,2]}", "n-1;n-2;");
  /* nested lists: @index is the innermost */
  expect("{{#a}}[{{#b}}{{@index}}{{/b}}]{{/a}}", "{\"a\":[{\"b\":[0,0]},{\"b\":[0]}]}", "[01][0]");
}

Test(template, sections_truthy_falsy_inverted) {
  expect("{{#o}}{{k}}{{/o}}", "{\"o\":{\"k\":\"v\"}}", "v");
  expect("{{#t}}yes{{/t}}{{^t}}no{{/t}}", "{\"t\":true}", "yes");
  expect("{{#t}}yes{{/t}}{{^t}}no{{/t}}", "{\"t\":false}", "no");
  expect("{{#s}}[{{.}}]{{/s}}", "{\"s\":\"txt\"}", "[txt]");
  const char *falsy[] = {"null", "false", "0", "\"\"", "[]", "{}"};
  for (size_t i = 0; i < sizeof falsy / sizeof *falsy; i++) {
    char vars[64];
    snprintf(vars, sizeof vars, "{\"v\":%s}", falsy[i]);
    expect("{{#v}}X{{/v}}{{^v}}empty{{/v}}", vars, "empty");
  }
}

Test(template, comments_and_standalone_lines) {
  expect("a{{! a comment }}b", NULL, "ab");
  expect("a{{! ends at the first }} rest}}b", NULL, "a rest}}b");
  expect("{{! multi\nline }}x", NULL, "x");
  /* standalone section tags vanish with their line */
  expect("start\n{{#xs}}\n- {{.}}\n{{/xs}}\nend\n", "{\"xs\":[1,2]}", "start\n- 1\n- 2\nend\n");
  expect("  {{! note }}  \nline\n", NULL, "line\n");
  /* a variable tag alone on its line keeps the line */
  expect("{{v}}\n", "{\"v\":\"x\"}", "x\n");
}

Test(template, unknown_variable_names_line_and_column) {
  expect_err("line one\n  {{missing}}", "{}", AD_ENOTFOUND, "t.md:2:3: unknown variable 'missing'");
  expect_err("{{a.zz}}", "{\"a\":{}}", AD_ENOTFOUND, "t.md:1:1: unknown variable 'a.zz'");
  expect_err("x\n{{#nope}}{{/nope}}", "{}", AD_ENOTFOUND, "t.md:2:1: unknown section 'nope'");
  expect_err("{{@index}}", "{}", AD_ENOTFOUND,
             "t.md:1:1: '@index' used outside a section over a list");
  /* lenient mode renders unknowns as empty */
  char err[256], *out;
  cr_assert_eq(render("[{{missing}}]{{#nope}}X{{/nope}}", "{}", TPL_LENIENT, &out, err, sizeof err),
               0);
  cr_assert_str_eq(out, "[]");
  free(out);
}

Test(template, compile_errors_name_positions) {
  expect_err("ok\n  {{#xs}} never closed", NULL, AD_EPARSE,
             "t.md:2:3: section 'xs' is never closed (expected '{{/xs}}')");
  expect_err("{{#a}}\n{{#b}}{{/a}}", NULL, AD_EPARSE,
             "t.md:2:7: closing tag '{{/a}}' does not match open section 'b' (opened at 2:1)");
  expect_err("x {{/a}}", NULL, AD_EPARSE, "t.md:1:3: closing tag '{{/a}}' without an open section");
  expect_err("abc\nde {{oops", NULL, AD_EPARSE,
             "t.md:2:4: unterminated tag '{{' (no closing '}}')");
  expect_err("{{ }}", NULL, AD_EPARSE, "t.md:1:1: empty tag name");
  expect_err("{{a b}}", NULL, AD_EPARSE, "t.md:1:1: invalid character in tag name 'a b'");
  expect_err("{{a..b}}", NULL, AD_EPARSE, "t.md:1:1: bad variable path 'a..b'");
  /* columns count characters, not bytes */
  expect_err("é {{/a}}", NULL, AD_EPARSE, "t.md:1:3: closing tag '{{/a}}' without an open section");
}

Test(template, first_line_offsets_messages) {
  tpl *t = NULL;
  char err[256];
  cr_assert_eq(tpl_compile("x\n{{#a}}", 8, "p.md", 10, &t, err, sizeof err), AD_EPARSE);
  cr_assert_str_eq(err, "p.md:11:1: section 'a' is never closed (expected '{{/a}}')");
}

Test(template, output_is_capped) {
  size_t n = AD_MAX_PROMPT / 2 + 10;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  json_t *vars = json_pack("{s:s}", "v", big);
  tpl *t = NULL;
  char err[256];
  cr_assert_eq(tpl_compile("{{v}}{{v}}", 10, "cap.md", 1, &t, err, sizeof err), 0);
  struct buf b = BUF_INIT;
  cr_assert_eq(tpl_render(t, vars, &b, err, sizeof err), AD_ETOOBIG);
  cr_assert(strstr(err, "exceeds"), "%s", err);
  cr_assert(b.len <= AD_MAX_PROMPT);
  buf_release(&b);
  tpl_free(t);
  /* one copy fits */
  cr_assert_eq(tpl_compile("{{v}}", 5, "cap.md", 1, &t, err, sizeof err), 0);
  cr_assert_eq(tpl_render(t, vars, &b, err, sizeof err), 0, "%s", err);
  cr_assert_eq(b.len, n);
  buf_release(&b);
  tpl_free(t);
  json_decref(vars);
  free(big);
}

Test(template, runaway_iteration_is_bounded) {
  /* 8 nested sections over a 1000-element list would be 10^24 steps */
  json_t *xs = json_array();
  for (int i = 0; i < 1000; i++) json_array_append_new(xs, json_integer(i));
  json_t *vars = json_pack("{s:o}", "x", xs);
  const char *text =
      "{{#x}}{{#x}}{{#x}}{{#x}}{{#x}}{{#x}}{{#x}}{{#x}}{{/x}}{{/x}}{{/x}}{{/x}}"
      "{{/x}}{{/x}}{{/x}}{{/x}}";
  tpl *t = NULL;
  char err[256];
  cr_assert_eq(tpl_compile(text, strlen(text), "loop.md", 1, &t, err, sizeof err), 0);
  struct buf b = BUF_INIT;
  cr_assert_eq(tpl_render(t, vars, &b, err, sizeof err), AD_ETOOBIG);
  cr_assert(strstr(err, "steps"), "%s", err);
  buf_release(&b);
  tpl_free(t);
  json_decref(vars);
}

Test(template, variables_list) {
  tpl *t = NULL;
  char err[128];
  const char *text = "{{a}} {{b.c}} {{#xs}}{{.}}{{@index}}{{y}}{{/xs}} {{a}}";
  cr_assert_eq(tpl_compile(text, strlen(text), "v", 1, &t, err, sizeof err), 0);
  json_t *v = tpl_variables(t);
  char *s = json_dumps(v, JSON_COMPACT);
  cr_assert_str_eq(s, "[\"a\",\"b\",\"xs\",\"y\"]");
  free(s);
  json_decref(v);
  tpl_free(t);
}

/* ---- prompt files ---- */

static json_t *prompt_render(const char *text, const char *vars_json, char *err, size_t n,
                             int *rc) {
  struct tpl_prompt p;
  *rc = tpl_prompt_compile(text, strlen(text), "p.md", &p, err, n);
  if (*rc) return NULL;
  json_t *vars = json_loads(vars_json, 0, NULL);
  json_t *msgs = NULL;
  *rc = tpl_prompt_render(&p, NULL, vars, 0, &msgs, err, n);
  json_decref(vars);
  tpl_prompt_release(&p);
  return msgs;
}

Test(template, prompt_file_split) {
  char err[256];
  int rc;
  json_t *m = prompt_render("=== system ===\nYou are {{who}}.\n\n=== user ===\n\nQ: {{q}}\n",
                            "{\"who\":\"a judge\",\"q\":\"x?\"}", err, sizeof err, &rc);
  cr_assert_eq(rc, 0, "%s", err);
  char *s = json_dumps(m, JSON_COMPACT);
  cr_assert_str_eq(s,
                   "[{\"role\":\"system\",\"content\":\"You are a judge.\"},"
                   "{\"role\":\"user\",\"content\":\"Q: x?\"}]");
  free(s);
  json_decref(m);
  /* without the system marker line, text before "=== user ===" is the system part */
  m = prompt_render("Sys.\n  === user ===  \nUser.", "{}", err, sizeof err, &rc);
  cr_assert_eq(rc, 0);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "content")), "Sys.");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 1), "content")), "User.");
  json_decref(m);
  /* no marker: all user */
  m = prompt_render("Just {{x}}.", "{\"x\":1}", err, sizeof err, &rc);
  cr_assert_eq(json_array_size(m), 1);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "role")), "user");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "content")), "Just 1.");
  json_decref(m);
}

Test(template, prompt_file_errors_use_file_lines) {
  char err[256];
  int rc;
  json_t *m = prompt_render("=== system ===\nS\n=== user ===\n\nline five {{#open}}", "{}", err,
                            sizeof err, &rc);
  cr_assert_null(m);
  cr_assert_eq(rc, AD_EPARSE);
  cr_assert_str_eq(err, "p.md:5:11: section 'open' is never closed (expected '{{/open}}')");
  m = prompt_render("=== system ===\nS\n=== user ===\nQ\n{{gone}}", "{}", err, sizeof err, &rc);
  cr_assert_eq(rc, AD_ENOTFOUND);
  cr_assert_str_eq(err, "p.md:5:1: unknown variable 'gone'");
}

Test(template, system_override) {
  struct tpl_prompt p;
  tpl *sys = NULL;
  char err[128];
  const char *text = "orig system\n=== user ===\nhi";
  cr_assert_eq(tpl_prompt_compile(text, strlen(text), "p", &p, err, sizeof err), 0);
  cr_assert_eq(tpl_compile("override {{n}}", 14, "s", 1, &sys, err, sizeof err), 0);
  json_t *vars = json_pack("{s:i}", "n", 7), *m = NULL;
  cr_assert_eq(tpl_prompt_render(&p, sys, vars, 0, &m, err, sizeof err), 0);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "content")),
                   "override 7");
  json_decref(m);
  json_decref(vars);
  tpl_free(sys);
  tpl_prompt_release(&p);
}

/* TPL_CHECK visits every body whatever the values: an unknown name behind a false,
 * empty or inverted section is found (a plain render would skip it). */
Test(template, check_visits_every_section_body) {
  static const struct {
    const char *text, *vars, *err;
  } cases[] = {
      {"{{#t}}ok{{/t}}{{^t}}\n{{bad}}{{/t}}", "{\"t\":true}", "t.md:2:1: unknown variable 'bad'"},
      {"{{#f}}{{bad}}{{/f}}", "{\"f\":false}", "t.md:1:7: unknown variable 'bad'"},
      {"{{#l}}{{x}}{{/l}}", "{\"l\":[]}", "t.md:1:7: unknown variable 'x'"},
      {"{{^o}}{{z}}{{/o}}", "{\"o\":{\"k\":1}}", "t.md:1:7: unknown variable 'z'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char err[256], *out;
    cr_assert_eq(render(cases[i].text, cases[i].vars, 0, &out, err, sizeof err), 0,
                 "case %zu: a plain render skips the body (%s)", i, err);
    free(out);
    cr_assert_eq(render(cases[i].text, cases[i].vars, TPL_CHECK, &out, err, sizeof err),
                 AD_ENOTFOUND, "case %zu", i);
    cr_assert_str_eq(err, cases[i].err, "case %zu", i);
    free(out);
  }
  /* names from the enclosing context and list elements resolve */
  char err[256], *out;
  cr_assert_eq(render("{{#l}}{{@index}} {{n}} {{top}}{{/l}}{{^l}}{{top}}{{/l}}",
                      "{\"l\":[{\"n\":1}], \"top\":2}", TPL_CHECK, &out, err, sizeof err),
               0, "%s", err);
  free(out);
}
