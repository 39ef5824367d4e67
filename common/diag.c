/* diag.c - diagnostics with source excerpts and caret underlines (diag.h).
 *
 *   specs/age.dldl:12:17: error: expected '=' after 'loss', found identifier 'kl'
 *      12 | loss kl(dist, agenet)
 *         |      ^~
 *
 * Columns are bytes in DlSrcLoc; for display, tabs are expanded to the next
 * multiple of 8 and UTF-8 continuation bytes take no column, so the caret
 * stays under the token on a terminal (chibicc's display_width does the same).
 */
#include "diag.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TABSTOP 8

void dl_diag_init(DlDiag *d, const DlSource *src, FILE *out)
{
    d->src = src;
    d->out = out ? out : stderr;
    d->nerrors = d->nwarnings = 0;
}

/* Display width of the bytes s[0..n) when they start at display column w. */
static int display_advance(const char *s, size_t n, int w)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t')
            w = (w / TABSTOP + 1) * TABSTOP;
        else if ((c & 0xC0) != 0x80) /* not a UTF-8 continuation byte */
            w++;
    }
    return w;
}

/* Start of line `line` (1-based) in src and its length without "\r\n";
 * NULL when the file has fewer lines. */
static const char *find_line(const DlSource *src, int line, size_t *len)
{
    const char *p = src->text, *end = src->text + src->size;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    if (e > p && e[-1] == '\r') e--;
    *len = (size_t)(e - p);
    return p;
}

/* "   12 | text" then "      |    ^~~~" under bytes [col-1, col-1+len). */
static void print_excerpt(FILE *out, const DlSource *src, DlSrcLoc loc)
{
    size_t n;
    const char *line = find_line(src, loc.line, &n);
    if (!line) return;
    int width = 5;
    for (int v = loc.line; v >= 100000; v /= 10) width++;
    fprintf(out, "%*d | ", width, loc.line);
    int w = 0;
    for (size_t i = 0; i < n; i++) { /* print with tabs expanded */
        int w2 = display_advance(line + i, 1, w);
        if (line[i] == '\t')
            fprintf(out, "%*s", w2 - w, "");
        else
            fputc(line[i], out);
        w = w2;
    }
    fputc('\n', out);
    size_t start = loc.col > 1 ? (size_t)loc.col - 1 : 0;
    if (start > n) start = n; /* e.g. end of file just past the last token */
    size_t stop = start + (size_t)loc.len;
    if (stop > n) stop = n;
    int c0 = display_advance(line, start, 0);
    int c1 = display_advance(line + start, stop - start, c0);
    fprintf(out, "%*s | %*s^", width, "", c0, "");
    for (int i = c0 + 1; i < c1; i++) fputc('~', out);
    fputc('\n', out);
}

enum { K_ERROR, K_WARNING, K_NOTE };

static void report(DlDiag *d, int kind, DlSrcLoc loc, const char *fmt, va_list ap)
{
    static const char *const label[] = {"error", "warning", "note"};
    /* Past the limit everything is dropped; notes and warnings too, since
     * they would otherwise attach to a dropped error. */
    if (kind == K_ERROR && ++d->nerrors > DL_DIAG_MAX_ERRORS) {
        if (d->nerrors == DL_DIAG_MAX_ERRORS + 1)
            fprintf(d->out, "%s%serror: too many errors (limit %d); the rest are not shown\n",
                    d->src ? d->src->name : "", d->src ? ": " : "", DL_DIAG_MAX_ERRORS);
        return;
    }
    if (d->nerrors > DL_DIAG_MAX_ERRORS) return;
    if (kind == K_WARNING) d->nwarnings++;
    if (!d->src)
        fprintf(d->out, "%s: ", label[kind]);
    else if (loc.line <= 0)
        fprintf(d->out, "%s: %s: ", d->src->name, label[kind]);
    else
        fprintf(d->out, "%s:%d:%d: %s: ", d->src->name, loc.line, loc.col, label[kind]);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (d->src && loc.line > 0 && loc.len > 0) print_excerpt(d->out, d->src, loc);
}

void dl_verror(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap)
{
    report(d, K_ERROR, loc, fmt, ap);
}
void dl_vwarning(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap)
{
    report(d, K_WARNING, loc, fmt, ap);
}
void dl_vnote(DlDiag *d, DlSrcLoc loc, const char *fmt, va_list ap)
{
    report(d, K_NOTE, loc, fmt, ap);
}

void dl_error(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, K_ERROR, loc, fmt, ap);
    va_end(ap);
}

void dl_warning(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, K_WARNING, loc, fmt, ap);
    va_end(ap);
}

void dl_note(DlDiag *d, DlSrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, K_NOTE, loc, fmt, ap);
    va_end(ap);
}

/* Levenshtein distance of a[0..na) and b[0..nb), two rows of the table. */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t *row = dl_xmalloc((nb + 1) * sizeof *row);
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0]; /* row[i-1][j-1] */
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[nb];
    free(row);
    return d;
}

const char *dl_suggest(const char *word, const char *const *names, int n)
{
    size_t nw = strlen(word);
    size_t limit = nw / 3 > 1 ? nw / 3 : 1;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        if (!names[i]) continue;
        size_t nn = strlen(names[i]);
        size_t gap = nn > nw ? nn - nw : nw - nn;
        if (gap >= best_d) continue; /* the distance is at least the length gap */
        size_t d = edit_distance(word, nw, names[i], nn);
        if (d < best_d) best_d = d, best = names[i];
    }
    return best;
}

int dl_source_read(DlSource *s, const char *path, char **why)
{
    DlBuf b = {0};
    char *w = NULL;
    if (dl_read_file(path, DL_LIMIT_SPEC, &b, &w) != 0) {
        dl_buf_free(&b);
        if (why) *why = w;
        else free(w);
        return -1;
    }
    s->name = dl_xstrdup(path);
    s->text = b.s;
    s->size = b.n;
    return 0;
}

void dl_source_free(DlSource *s)
{
    free((char *)s->name);
    free((char *)s->text);
    s->name = s->text = NULL;
    s->size = 0;
}
