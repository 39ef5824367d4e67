/* spec_programs.h - the real specs' programs at a small batch, for the kernel
 * tests (test_kernels_ref.c, test_cuda_emu.c).
 *
 * ref_spec_open reads specs/NAME.dldl (or NAME itself when it is a path with
 * a '/', e.g. tests/ops/adam.dldl), replaces the number after `batch` in
 * its train block by `batch`, then parses, lowers, differentiates the train
 * graph and runs the back end (fuse, memory plan, codegen) on the train and
 * eval programs; every step must succeed (cmocka asserts).  Header-only, like
 * the other test helpers in tests/ref (see interp.h): include it after
 * <cmocka.h> and the compiler headers.
 */
#ifndef DL_REF_SPEC_PROGRAMS_H
#define DL_REF_SPEC_PROGRAMS_H

#include <string.h>

#include "../../compiler/autodiff.h"
#include "../../compiler/lower.h"
#include "../../compiler/plan_build.h"
#include "../../grammar/ast.h"

typedef struct RefSpec {
    char *path, *text;
    DlSource src;
    DlPool *pool;
    PbProgram progs[3]; /* "train" (after autodiff), "eval", and with ranks > 1 "train@N" */
    int nprogs;
} RefSpec;

/* ranks > 1: also the train program of one of `ranks` processes (batch / ranks
 * samples, batch norm synchronised: its all-reduces are the identity in one
 * process, as in runtime/exec.c without a communicator). */
static void ref_spec_open_ranks(RefSpec *r, const char *name, int batch, int ranks)
{
    memset(r, 0, sizeof *r);
    r->path = strchr(name, '/') ? dl_xstrdup(name) : dl_xasprintf("specs/%s.dldl", name);
    if (dl_source_read(&r->src, r->path, NULL) != 0) fail_msg("%s: cannot read", r->path);
    /* batch override: the number after "batch" in the train block */
    r->text = dl_xstrdup(r->src.text);
    char *tb = strstr(r->text, "\ntrain {"), *bk = tb ? strstr(tb, "batch") : NULL;
    assert_non_null(bk);
    char *eq = strchr(bk, '=');
    assert_non_null(eq);
    char *q = eq + 1;
    while (*q == ' ' || (*q >= '0' && *q <= '9')) *q++ = ' ';
    char num[16];
    int n = snprintf(num, sizeof num, " %d", batch);
    assert_true(n > 0 && n <= q - eq - 1); /* fits where the old number was */
    memcpy(eq + 1, num, (size_t)n);
    DlSource src2 = {r->path, r->text, strlen(r->text)};
    r->pool = dl_pool_new();
    DlDiag diag;
    dl_diag_init(&diag, &src2, stderr);
    AstFile *ast = NULL;
    LowerResult lr;
    assert_int_equal(dl_parse(&src2, r->pool, &diag, &ast), 0);
    assert_int_equal(lower_file_ranks(ast, r->pool, &diag, NULL, 0, &ranks, ranks > 1, &lr), 0);
    assert_int_equal(ad_differentiate(lr.train, &diag), 0);
    r->progs[0] = (PbProgram){.name = "train", .g = lr.train};
    r->progs[1] = (PbProgram){.name = "eval", .g = lr.eval};
    r->nprogs = 2;
    if (ranks > 1) {
        assert_int_equal(lr.nrank_train, 1);
        assert_int_equal(ad_differentiate(lr.rank_train[0], &diag), 0);
        r->progs[r->nprogs++] = (PbProgram){.name = "train@N", .g = lr.rank_train[0]};
    }
    for (int p = 0; p < r->nprogs; p++) assert_int_equal(pb_compile_program(&r->progs[p], 3, r->pool, &diag), 0);
}

static inline void ref_spec_open(RefSpec *r, const char *name, int batch) { ref_spec_open_ranks(r, name, batch, 0); }

static void ref_spec_close(RefSpec *r)
{
    for (int p = 0; p < r->nprogs; p++) pb_program_free(&r->progs[p]);
    dl_pool_free(r->pool);
    free(r->text);
    dl_source_free(&r->src);
    free(r->path);
}

#endif
