/* test_diag.c - diagnostics (common/diag.c): message header, source excerpt
 * and caret underline (tabs, UTF-8, end of line), the error limit,
 * dl_suggest's distance bound, dl_source_read; and dl_parse's API contract
 * (grammar/): node fields, partial ASTs after errors, the error count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/diag.h"
#include "common/util.h"
#include "grammar/ast.h"

/* Run fn(d) with messages captured; returns the malloc'd text. */
static char *capture(const DlSource *src, void (*fn)(DlDiag *), DlDiag *out)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    dl_diag_init(out, src, f);
    fn(out);
    fclose(f);
    return text;
}

static DlSource make_src(const char *name, const char *text)
{
    return (DlSource){name, text, strlen(text)};
}

static void emit_tab_caret(DlDiag *d)
{
    dl_error(d, (DlSrcLoc){2, 6, 3}, "unknown layer '%s'", "foo");
}

static void test_caret_tabs(void **state)
{
    DlSource src = make_src("t.dldl", "train {\n\tx = foo(1)\n}\n");
    DlDiag d;
    char *s = capture(&src, emit_tab_caret, &d);
    /* the tab expands to 8 columns; "x = " follows, so foo starts at 12 */
    assert_string_equal(s, "t.dldl:2:6: error: unknown layer 'foo'\n"
                           "    2 |         x = foo(1)\n"
                           "      |             ^~~\n");
    assert_int_equal(d.nerrors, 1);
    free(s);
}

static void emit_utf8(DlDiag *d)
{
    dl_warning(d, (DlSrcLoc){1, 8, 1}, "w");   /* the 'x': é is two bytes, one column */
    dl_note(d, (DlSrcLoc){1, 9, 1}, "n");      /* just past the end of the line */
}

static void test_caret_utf8_and_end(void **state)
{
    DlSource src = make_src("u.dldl", "a = \xc3\xa9 x\r\n");
    DlDiag d;
    char *s = capture(&src, emit_utf8, &d);
    assert_string_equal(s, "u.dldl:1:8: warning: w\n"
                           "    1 | a = \xc3\xa9 x\n"
                           "      |       ^\n"
                           "u.dldl:1:9: note: n\n"
                           "    1 | a = \xc3\xa9 x\n"
                           "      |        ^\n");
    assert_int_equal(d.nwarnings, 1);
    assert_int_equal(d.nerrors, 0);
    free(s);
}

static void emit_no_caret(DlDiag *d)
{
    dl_error(d, (DlSrcLoc){1, 1, 0}, "no caret");
    dl_error(d, (DlSrcLoc){0, 0, 0}, "no place");
}

static void test_no_caret(void **state)
{
    DlSource src = make_src("n.dldl", "loss = x\n");
    DlDiag d;
    char *s = capture(&src, emit_no_caret, &d);
    assert_string_equal(s, "n.dldl:1:1: error: no caret\nn.dldl: error: no place\n");
    free(s);
    s = capture(NULL, emit_no_caret, &d);
    assert_string_equal(s, "error: no caret\nerror: no place\n");
    assert_int_equal(d.nerrors, 2);
    free(s);
}

static void emit_many(DlDiag *d)
{
    for (int i = 0; i < DL_DIAG_MAX_ERRORS + 5; i++) dl_error(d, (DlSrcLoc){0, 0, 0}, "e%d", i);
    dl_note(d, (DlSrcLoc){0, 0, 0}, "dropped too");
}

static void test_error_limit(void **state)
{
    DlSource src = make_src("m.dldl", "");
    DlDiag d;
    char *s = capture(&src, emit_many, &d);
    int lines = 0;
    for (char *p = s; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, DL_DIAG_MAX_ERRORS + 1);
    assert_non_null(strstr(s, "m.dldl: error: e19\n"));
    assert_null(strstr(s, "e20"));
    assert_null(strstr(s, "dropped"));
    assert_non_null(strstr(s, "too many errors"));
    assert_int_equal(d.nerrors, DL_DIAG_MAX_ERRORS + 5);
    free(s);
}

static void test_suggest(void **state)
{
    const char *losses[] = {"kl", "l1", "kl_divergence", "cross_entropy"};
    assert_string_equal(dl_suggest("kl_divergance", losses, 4), "kl_divergence");
    assert_string_equal(dl_suggest("k1", losses, 4), "kl");
    assert_null(dl_suggest("softmax", losses, 4));
    const char *kw[] = {"data", "target", "block", "network", "loss"};
    assert_string_equal(dl_suggest("netwrok", kw, 5), "network"); /* distance 2 <= 7/3 */
    assert_null(dl_suggest("ab", (const char *[]){"xy"}, 1));      /* 2 > max(1, 0) */
    assert_string_equal(dl_suggest("a", (const char *[]){"b"}, 1), "b");
    assert_null(dl_suggest("x", losses, 0));
}

static void test_source_read(void **state)
{
    DlSource s;
    char *why = NULL;
    assert_int_equal(dl_source_read(&s, "/nonexistent/dir/x.dldl", &why), -1);
    assert_string_equal(why, "No such file or directory");
    free(why);
    /* bounded: a device is refused before anything is read (a spec of /dev/zero once grew until killed) */
    assert_int_equal(dl_source_read(&s, "/dev/zero", &why), -1);
    assert_string_equal(why, "is not a regular file");
    free(why);
    assert_int_equal(dl_source_read(&s, "/tmp", &why), -1);
    assert_string_equal(why, "is a directory");
    free(why);
    char path[] = "/tmp/dldl_test_diag_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char body[] = "train { epochs = 8 }\n";
    assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    close(fd);
    assert_int_equal(dl_source_read(&s, path, NULL), 0);
    assert_string_equal(s.name, path);
    assert_int_equal(s.size, sizeof body - 1);
    assert_string_equal(s.text, body);
    dl_source_free(&s);
    assert_null(s.text);
    assert_int_equal(truncate(path, (off_t)DL_LIMIT_SPEC + 1), 0); /* one byte over the limit */
    assert_int_equal(dl_source_read(&s, path, &why), -1);
    assert_string_equal(why, "is 1.0 MB (1048577 bytes), more than the 1048576 bytes allowed");
    free(why);
    assert_int_equal(truncate(path, 0), 0); /* an empty spec is an empty string */
    assert_int_equal(dl_source_read(&s, path, NULL), 0);
    assert_int_equal(s.size, 0);
    assert_string_equal(s.text, "");
    dl_source_free(&s);
    unlink(path);
}

/* ---- dl_parse ---------------------------------------------------------- */

static int parse(const char *text, DlPool *pool, AstFile **f, char **msgs)
{
    static DlSource src;
    src = make_src("p.dldl", text);
    size_t n;
    FILE *out = open_memstream(msgs, &n);
    DlDiag d;
    dl_diag_init(&d, &src, out);
    int nerr = dl_parse(&src, pool, &d, f);
    fclose(out);
    return nerr;
}

static void test_parse_nodes(void **state)
{
    DlPool *pool = dl_pool_new();
    AstFile *f;
    char *msgs;
    int nerr = parse("network n(x = faces.input) {\n"
                     "    y = conv(x, 3, k = 2.5, bins = -1..1 step 0.5)\n"
                     "    return y\n"
                     "}\n"
                     "target t = g(bins = 0..9)\n",
                     pool, &f, &msgs);
    assert_int_equal(nerr, 0);
    assert_string_equal(msgs, "");
    assert_int_equal(f->ndecls, 2);
    const AstDecl *n = &f->decls[0];
    assert_int_equal(n->kind, AST_NETWORK);
    assert_string_equal(n->name, "n");
    assert_int_equal(n->nparams, 1);
    assert_int_equal(n->params[0].value->kind, EX_FIELD);
    assert_string_equal(n->params[0].value->name, "input");
    assert_string_equal(n->params[0].value->a->name, "faces");
    assert_int_equal(n->end_loc.line, 4);
    assert_int_equal(n->nitems, 2);
    const AstExpr *call = n->items[0].value;
    assert_int_equal(call->kind, EX_CALL);
    assert_int_equal(call->loc.line, 2);
    assert_int_equal(call->loc.col, 9);
    assert_int_equal(call->loc.len, 4);
    assert_int_equal(call->nargs, 2);
    assert_true(call->args[1]->is_int);
    assert_int_equal(call->nkwargs, 2);
    assert_string_equal(call->kwargs[0].key, "k");
    assert_false(call->kwargs[0].value->is_int);
    assert_true(call->kwargs[0].value->num == 2.5);
    const AstExpr *r = call->kwargs[1].value;
    assert_int_equal(r->kind, EX_RANGE);
    assert_int_equal(r->a->kind, EX_NEG);
    assert_non_null(r->c);
    assert_null(n->items[1].name); /* return */
    const AstDecl *t = &f->decls[1];
    assert_int_equal(t->kind, AST_TARGET);
    assert_int_equal(t->nitems, 1);
    assert_string_equal(t->items[0].name, "t");
    assert_null(t->items[0].value->kwargs[0].value->c); /* no step */
    assert_string_equal(ast_decl_kind_name(AST_OPTIMIZER), "optimizer");
    free(msgs);
    dl_pool_free(pool);
}

static void test_parse_recovers(void **state)
{
    DlPool *pool = dl_pool_new();
    AstFile *f;
    char *msgs;
    int nerr = parse("train {\n  a = = 1\n  b = 2\n  c 3\n}\nmetrics { m = 1 }\n",
                     pool, &f, &msgs);
    assert_int_equal(nerr, 2);
    assert_non_null(strstr(msgs, "p.dldl:2:7: error: expected an expression, found '='"));
    assert_non_null(strstr(msgs, "p.dldl:4:5: error: expected '=' after 'c'"));
    assert_int_equal(f->ndecls, 2);
    assert_int_equal(f->decls[0].nitems, 1); /* b survives */
    assert_string_equal(f->decls[0].items[0].name, "b");
    assert_int_equal(f->decls[1].kind, AST_METRICS);
    free(msgs);

    nerr = parse("", pool, &f, &msgs);
    assert_int_equal(nerr, 0);
    assert_int_equal(f->ndecls, 0);
    free(msgs);
    dl_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caret_tabs),
        cmocka_unit_test(test_caret_utf8_and_end),
        cmocka_unit_test(test_no_caret),
        cmocka_unit_test(test_error_limit),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_source_read),
        cmocka_unit_test(test_parse_nodes),
        cmocka_unit_test(test_parse_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
