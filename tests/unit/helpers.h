/* helpers.h - shared helpers for the unit tests (tests/unit/helpers.c, linked into the one
 * unit-test binary): a temporary directory and its removal, paths inside it, whole-file
 * write and read, and an llm client on the in-process sim endpoint.  The helpers assert
 * (Criterion) instead of returning errors, except th_rmtree, which teardowns may ignore. */
#ifndef AD_TEST_HELPERS_H
#define AD_TEST_HELPERS_H

#include <jansson.h>
#include <stddef.h>

#include "llm/llm.h"

/* Create a fresh directory /tmp/ad_<tag>.XXXXXX (mkdtemp) and put its path in dir[n]. */
void th_mkdtemp(char *dir, size_t n, const char *tag);

/* Remove dir and everything below it, like `rm -rf` (no shell, symlinks not followed).
 * Only a directory made by th_mkdtemp: anything else is refused.  0, or -1 on any error. */
int th_rmtree(const char *dir);

/* dir "/" name, in one of 8 rotating static buffers: valid until the 8th call after. */
char *th_path(const char *dir, const char *name);

/* Write content (NUL-terminated) to path, replacing the file; returns path. */
const char *th_write_file(const char *path, const char *content);

/* The whole file, NUL-terminated and malloc'd (the caller frees it); its length in *n when
 * n is not NULL. */
char *th_read_file(const char *path, size_t *n);

/* An endpoint config named name with the one base URL "sim" (the in-process sim). */
void th_sim_config(struct llm_endpoint_config *cfg, const char *name);

/* A new client with that endpoint added; extra_body (may be NULL) as in the config. */
llm_client *th_sim_client(const char *name, const json_t *extra_body);

#endif
