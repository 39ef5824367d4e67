/* compile.h - the pass pipeline of dldlc, as one plain list of calls:
 *
 *   dl_parse -> lower_file -> graph_verify -> ad_differentiate -> graph_verify
 *   -> (per program: train, eval) fuse_graph -> fuse_verify -> mem_plan
 *   -> mem_verify -> cg_generate
 *   -> plan_build -> dl_plan_write
 *
 * The pipeline stops after the last stage the request needs (--emit=STAGE
 * prints that stage's text; -o needs everything).
 */
#ifndef DL_COMPILE_H
#define DL_COMPILE_H

#include <stdio.h>

typedef enum CompileEmit {
    EMIT_NONE, EMIT_AST, EMIT_GRAPH, EMIT_GRAD, EMIT_FUSED, EMIT_MEM, EMIT_KIR,
    EMIT_C, EMIT_CUDA, EMIT_PTX, EMIT_PLAN,
} CompileEmit;

/* "ast|graph|grad|fused|mem|kir|c|cuda|ptx|plan" (for usage lines). */
extern const char *const compile_emit_names;

typedef struct CompileOptions {
    const char *spec;    /* the .dldl to compile */
    const char *output;  /* -o: where to write the plan (atomically), or NULL */
    CompileEmit emit;    /* what to print on out */
    const char *arch;    /* --emit=ptx: NVRTC virtual architecture, e.g. "compute_80" */
    const char *const *defines; /* -D name=value: params { } overrides, "name=value" each */
    int ndefines;
    const int *ranks;    /* --ranks=2,4: also a train@N program per N (docs/parallel.md) */
    int nranks;
} CompileOptions;

/* The CompileEmit for a stage name ("fused"), or -1 when unknown. */
int compile_emit_parse(const char *name);

/* Compile o->spec, print the requested stage's text on out, write the plan
 * when o->output is set.  Diagnostics and errors go to err.
 * Returns 0 on success, 1 when the spec has errors (already printed with
 * their locations), cannot be read, or the plan cannot be written
 * ("dldlc: cannot read 'x.dldl': No such file or directory"). */
int compile_run(const CompileOptions *o, FILE *out, FILE *err);

#endif
