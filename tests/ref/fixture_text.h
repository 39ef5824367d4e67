/* fixture_text.h - reading the numeric fixtures of tests/numeric/ (text files
 * written by numpy scripts): the whole file, with comment lines (starting
 * with '#') blanked out so a number parser can skip them as white space,
 * and its "NAME COUNT number..." sections.
 * Header-only: included by the tests that read fixtures. */
#ifndef DL_TEST_FIXTURE_TEXT_H
#define DL_TEST_FIXTURE_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"

/* The text of path (run from the repository root), NUL-terminated, in a
 * DlBuf the caller frees; 0, or -1 with a message on stderr. */
static inline int fixture_read_text(const char *path, DlBuf *text)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open (run from the repository root)\n", path);
        return -1;
    }
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) dl_buf_put(text, chunk, got);
    fclose(f);
    dl_buf_put(text, "", 1);
    for (char *s = text->s; *s;) { /* blank out comment lines */
        if (*s == '#')
            while (*s && *s != '\n') *s++ = ' ';
        while (*s && *s != '\n') s++;
        if (*s) s++;
    }
    return 0;
}

/* Read one "NAME COUNT" section at *cur followed by COUNT numbers, advancing
 * *cur; want: the count, or -1 for any (up to 10^6).  Returns malloc'd
 * numbers (*count set when count is not NULL), or NULL with a message naming
 * path and the section. */
static inline double *fixture_section(char **cur, const char *path, const char *name, long want, long *count)
{
    char word[32];
    int used = 0;
    long n = 0;
    if (sscanf(*cur, " %31s %ld%n", word, &n, &used) != 2 || strcmp(word, name) != 0) {
        fprintf(stderr, "%s: expected section '%s'\n", path, name);
        return NULL;
    }
    if ((want >= 0 && n != want) || n < 0 || n > 1000000) {
        fprintf(stderr, "%s: section '%s' has %ld numbers, expected %ld\n", path, name, n, want);
        return NULL;
    }
    *cur += used;
    double *v = dl_xcalloc((size_t)n + 1, sizeof *v);
    for (long i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(*cur, &end);
        if (end == *cur) {
            fprintf(stderr, "%s: section '%s': number %ld missing\n", path, name, i);
            free(v);
            return NULL;
        }
        *cur = end;
    }
    if (count) *count = n;
    return v;
}

#endif
