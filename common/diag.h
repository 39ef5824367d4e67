/* diag.h - source locations and diagnostics shared by every stage.
 *
 * Diagnostics print in the cproc/gcc form, with the source line and a caret
 * underline across the offending token (chibicc, jq):
 *
 *   specs/age.dldl:12:17: error: unknown loss 'kl_divergance'; did you mean 'kl'?
 *      12 |   loss = kl_divergance(pred, target)
 *         |          ^~~~~~~~~~~~~
 *
 * Errors are counted, never fatal: a stage reports and goes on, and the caller
 * checks dl_diag_errors() at the stage boundary.  After DL_DIAG_MAX_ERRORS the
 * sink prints "too many errors" once and drops the rest.
 */
#ifndef DL_DIAG_H
#define DL_DIAG_H

#include <stdarg.h>
#include <stdio.h>

#define DL_DIAG_MAX_ERRORS 20

/* A place in a source file. line and col are 1-based; col counts bytes.
 * len is the token's length in bytes (>= 1 for a caret, 0 = "no location"). */
typedef struct DlSrcLoc {
    int line, col, len;
} DlSrcLoc;

/* One source file held in memory; text is NUL-terminated.  name is what the
 * user typed (used as is in messages).  Owned by whoever created it. */
typedef struct DlSource {
    const char *name;
    const char *text;
    size_t size;
} DlSource;

typedef struct DlDiag {
    const DlSource *src; /* may be NULL: messages then carry no file or caret */
    FILE *out;           /* where messages go (stderr by default) */
    int nerrors, nwarnings;
} DlDiag;

void dl_diag_init(DlDiag *d, const DlSource *src, FILE *out);
/* Print "file:line:col: error: MSG", the source line and a caret line. */
void dl_error(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dl_warning(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A "note:" attached to the previous message (e.g. "'network' opened here"). */
void dl_note(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The va_list forms, for wrappers such as the compiler's lw_error. */
void dl_verror(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap);
void dl_vwarning(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap);
void dl_vnote(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap);
static inline int dl_diag_errors(const DlDiag *d) { return d->nerrors; }

/* The closest of names[0..n) to word by edit distance, or NULL when none is
 * close enough (distance > max(1, strlen(word)/3)).  For "did you mean". */
const char *dl_suggest(const char *word, const char *const *names, int n);

/* Read a whole spec into a DlSource (text and name malloc'd): a regular
 * file of at most DL_LIMIT_SPEC bytes (common/util.h dl_read_file).
 * Returns 0, or -1 with *why (malloc'd, when why is not NULL) saying why:
 * "No such file or directory", "is a directory", "is 3.0 MB, more than ...". */
int dl_source_read(DlSource *s, const char *path, char **why);
void dl_source_free(DlSource *s);

#endif
