/* compile.c - the pass pipeline of dldlc (compile.h). */
#include "compile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../codegen/codegen.h"
#include "../codegen/kir_plan.h"
#include "../common/plan.h"
#include "../grammar/ast.h"
#include "autodiff.h"
#include "fuse.h"
#include "graph.h"
#include "lower.h"
#include "memplan.h"
#include "plan_build.h"

const char *const compile_emit_names = "ast|graph|grad|fused|mem|kir|c|cuda|ptx|plan";

static const char *const emit_name[] = {
    [EMIT_NONE] = "", [EMIT_AST] = "ast", [EMIT_GRAPH] = "graph", [EMIT_GRAD] = "grad",
    [EMIT_FUSED] = "fused", [EMIT_MEM] = "mem", [EMIT_KIR] = "kir", [EMIT_C] = "c",
    [EMIT_CUDA] = "cuda", [EMIT_PTX] = "ptx", [EMIT_PLAN] = "plan",
};

int compile_emit_parse(const char *name)
{
    for (int i = EMIT_AST; i <= EMIT_PLAN; i++)
        if (!strcmp(name, emit_name[i])) return i;
    return -1;
}

static void put(FILE *out, DlBuf *b)
{
    if (b->n) fwrite(b->s, 1, b->n, out);
    b->n = 0;
}

/* PARAM and STATE nodes of the programs agree in place by name (one
 * parameter arena serves both programs). */
static int check_shared_layout(const PbProgram *a, const PbProgram *b, DlDiag *diag)
{
    int errors = 0;
    for (uint32_t i = 0; i < a->g->n; i++) {
        const GNode *N = &a->g->nodes[i];
        if ((N->op != OP_PARAM && N->op != OP_STATE) || !N->name) continue;
        uint32_t j = graph_find(b->g, N->name); /* names are unique in a graph */
        if (j != G_NONE) {
            const GNode *M = &b->g->nodes[j];
            if (M->op != N->op) continue;
            const GBuffer *x = &a->mem.buf[i], *y = &b->mem.buf[j];
            if (x->arena != y->arena || x->offset != y->offset || x->numel != y->numel) {
                dl_error(diag, N->loc, "internal: '%s' is at %s+%lld in %s but at %s+%lld in %s",
                         N->name, graph_arena_name(x->arena), (long long)x->offset, a->name,
                         graph_arena_name(y->arena), (long long)y->offset, b->name);
                errors++;
            }
        }
    }
    return errors;
}

/* The stage the request needs: 1 fuse, 2 memory plan, 3 code, 4 plan. */
static int backend_stage(const CompileOptions *o)
{
    if (o->output) return 4;
    switch (o->emit) {
    case EMIT_FUSED: return 1;
    case EMIT_MEM: return 2;
    case EMIT_KIR: return 3;
    case EMIT_C: case EMIT_CUDA: case EMIT_PTX: case EMIT_PLAN: return 4;
    case EMIT_NONE: case EMIT_AST: case EMIT_GRAPH: case EMIT_GRAD: return 0;
    }
    return 4;
}

int compile_run(const CompileOptions *o, FILE *out, FILE *err)
{
    DlSource src;
    char *why = NULL;
    struct stat so, ss;
    if (o->output && stat(o->output, &so) == 0) { /* -o replaces a regular file only, never the spec */
        if (!S_ISREG(so.st_mode)) {
            fprintf(err, "dldlc: refusing to write '%s': %s\n", o->output,
                    S_ISDIR(so.st_mode) ? "it is a directory" : "it is not a regular file");
            return 1;
        }
        if (stat(o->spec, &ss) == 0 && ss.st_dev == so.st_dev && ss.st_ino == so.st_ino) {
            fprintf(err, "dldlc: refusing to write '%s': it is the spec being compiled\n", o->output);
            return 1;
        }
    }
    if (dl_source_read(&src, o->spec, &why) != 0) {
        fprintf(err, "dldlc: cannot read '%s': %s\n", o->spec, why);
        free(why);
        return 1;
    }
    DlPool *pool = dl_pool_new();
    DlDiag diag;
    dl_diag_init(&diag, &src, err);
    DlBuf b = {0};
    DlPlan *plan = NULL;
    char *module_src = NULL;
    PbProgram prog[2 + LOWER_MAX_RANK_PROGRAMS] = {{.name = "train"}, {.name = "eval"}};
    char rank_name[LOWER_MAX_RANK_PROGRAMS][24];
    int nprog = 2, stage = backend_stage(o), rc = 1;
    LowerResult lr;
    memset(&lr, 0, sizeof lr);

    AstFile *ast = NULL;
    if (dl_parse(&src, pool, &diag, &ast) || dl_diag_errors(&diag)) goto done;
    if (o->emit == EMIT_AST) {
        ast_dump(ast, &b);
        put(out, &b);
        if (!o->output) goto ok;
    }
    LowerOverride *ov = dl_pool_alloc(pool, ((size_t)o->ndefines + 1) * sizeof *ov);
    for (int i = 0; i < o->ndefines; i++) {
        const char *eq = strchr(o->defines[i], '=');
        ov[i].name = dl_pool_strndup(pool, o->defines[i], eq ? (size_t)(eq - o->defines[i]) : strlen(o->defines[i]));
        ov[i].value = eq ? eq + 1 : "";
    }
    if (o->nranks > LOWER_MAX_RANK_PROGRAMS) {
        fprintf(err, "dldlc: --ranks lists %d process counts, at most %d\n", o->nranks, LOWER_MAX_RANK_PROGRAMS);
        goto done;
    }
    if (lower_file_ranks(ast, pool, &diag, ov, o->ndefines, o->ranks, o->nranks, &lr) || dl_diag_errors(&diag))
        goto done;
    if (graph_verify(lr.train, "lower", &diag) + graph_verify(lr.eval, "lower", &diag)) goto done;
    if (o->emit == EMIT_GRAPH) {
        dl_buf_printf(&b, "# train (forward)\n");
        graph_dump(lr.train, &b);
        dl_buf_printf(&b, "# eval\n");
        graph_dump(lr.eval, &b);
        put(out, &b);
    }
    if (o->emit <= EMIT_GRAPH && !o->output) goto ok;
    if (ad_differentiate(lr.train, &diag) || dl_diag_errors(&diag)) goto done;
    if (graph_verify(lr.train, "autodiff", &diag)) goto done;
    for (int r = 0; r < lr.nrank_train; r++) { /* train@N: the same passes (docs/parallel.md) */
        if (!lr.rank_train[r] || graph_verify(lr.rank_train[r], "lower", &diag) ||
            ad_differentiate(lr.rank_train[r], &diag) || graph_verify(lr.rank_train[r], "autodiff", &diag))
            goto done;
        snprintf(rank_name[r], sizeof rank_name[r], "train@%d", lr.rank_n[r]);
        prog[nprog++] = (PbProgram){.name = rank_name[r], .g = lr.rank_train[r]};
    }
    if (o->emit == EMIT_GRAD) {
        graph_dump(lr.train, &b);
        put(out, &b);
    }
    if (stage == 0) goto ok;

    prog[0].g = lr.train;
    prog[1].g = lr.eval;
    for (int i = 0; i < nprog; i++)
        if (pb_compile_program(&prog[i], stage < 3 ? stage : 3, pool, &diag)) goto done;
    for (int i = 1; i < nprog && stage >= 2; i++)
        if (check_shared_layout(&prog[0], &prog[i], &diag)) goto done;
    if (stage >= 2) { /* warns when the plan would not fit the machine */
        const Graph *gs[2 + LOWER_MAX_RANK_PROGRAMS];
        const GMemPlan *ms[2 + LOWER_MAX_RANK_PROGRAMS];
        const char *ns[2 + LOWER_MAX_RANK_PROGRAMS];
        for (int i = 0; i < nprog; i++) gs[i] = prog[i].g, ms[i] = &prog[i].mem, ns[i] = prog[i].name;
        mem_check_total(gs, ms, ns, nprog, &diag);
    }
    if (o->emit == EMIT_FUSED || o->emit == EMIT_MEM || o->emit == EMIT_KIR) {
        for (int i = 0; i < nprog; i++) {
            dl_buf_printf(&b, "# %s\n", prog[i].name);
            if (o->emit == EMIT_FUSED) fuse_dump(prog[i].g, &prog[i].sched, &b);
            else if (o->emit == EMIT_MEM) mem_dump(prog[i].g, &prog[i].sched, &prog[i].mem, &b);
            else if (prog[i].mod.kir_text) dl_buf_printf(&b, "%s", prog[i].mod.kir_text);
        }
        put(out, &b);
    }
    if (stage < 4) goto ok;

    plan = dl_xcalloc(1, sizeof *plan);
    if (plan_build(&lr, prog, nprog, plan, &diag)) goto done;
    if (o->emit == EMIT_C || o->emit == EMIT_CUDA || o->emit == EMIT_PTX) {
        /* the module dldlrun renders from the plan's kernel IR, by the same code */
        KirModule km;
        if (kir_module_load(plan, &km, &why) != 0) {
            fprintf(err, "dldlc: internal error: %s\n", why);
            free(why);
            goto done;
        }
        module_src = kir_module_source(&km, o->emit != EMIT_C);
        kir_module_free(&km);
    }
    if (o->emit == EMIT_C || o->emit == EMIT_CUDA) fputs(module_src, out);
    if (o->emit == EMIT_PLAN) dl_plan_dump(plan, out);
    if (o->emit == EMIT_PTX) {
        const char *arch = o->arch ? o->arch : "compute_80";
        char *ptx = NULL, *log = NULL;
        if (cg_compile_ptx(module_src, arch, &ptx, &log) != 0) {
            fprintf(err, "dldlc: NVRTC could not compile the CUDA module of '%s' for %s:\n%s\n",
                    o->spec, arch, log ? log : "(no log)");
            free(ptx);
            free(log);
            goto done;
        }
        fputs(ptx, out);
        free(ptx);
        free(log);
    }
    if (o->output) {
        why = NULL;
        if (dl_plan_write(plan, o->output, &why) != 0) {
            fprintf(err, "dldlc: cannot write '%s': %s\n", o->output, why ? why : strerror(errno));
            free(why);
            goto done;
        }
    }
ok:
    rc = 0;
done:
    free(module_src);
    dl_plan_free(plan);
    for (int i = 0; i < nprog; i++) pb_program_free(&prog[i]);
    dl_buf_free(&b);
    dl_pool_free(pool);
    dl_source_free(&src);
    return rc;
}
