/* fixture_text.h - reading the numeric fixtures of tests/numeric/ (text files
 * written by numpy scripts): the whole file, with comment lines (starting
 * with '#') blanked out so a number parser can skip them as white space.
 * Header-only: included by the tests that read fixtures. */
#ifndef DL_TEST_FIXTURE_TEXT_H
#define DL_TEST_FIXTURE_TEXT_H

#include <stdio.h>

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

#endif
