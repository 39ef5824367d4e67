/* cpu_lib.c - oneDNN convolutions and OpenBLAS matrix products (cpu_lib.h).
 *
 * Layout choice, measured by bench/conv_bench.c on the age network's eight
 * 3x3 pad-1 convolutions (batch 64, 2 threads, AMD EPYC with AVX2): see
 * DL_CONV_DEFAULT below and the table in that file.
 *
 * OpenBLAS threads: the Debian OpenBLAS is the pthread build; its worker
 * threads spin after each call and compete with the OpenMP team that runs
 * our kernels and oneDNN.  Measured, an sgemm followed by a 2-thread OpenMP
 * loop (2000 rounds): 64x128x117 568 us with 1 OpenBLAS thread, 2172 us with
 * 2; 512x512x512 5.4 ms with 1, 14.2 ms with 2.  So OpenBLAS runs
 * single-threaded.
 */
#include "cpu_lib.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "../common/util.h"

/* The measured winner (bench/conv_bench.c, 2 threads, batch 64, the 8 age
 * layers, median of 7; the machine was shared, so single layers are noisy):
 *              plain nchw   blocked + reorders
 *   fwd          271.6 ms     182.5 ms
 *   bwd-data     287.0 ms     195.8 ms
 *   bwd-weights  404.4 ms     281.1 ms
 *   total        963.1 ms     659.5 ms   (an earlier run: 2083 vs 908 ms)
 * oneDNN 2.6 runs gemm-based kernels on plain layouts (x64:gemm:jit) and its
 * direct AVX2 kernels (jit:avx2) on nChw8c; the reorders cost less than the
 * difference on every layer but a few noisy ones. */
#define DL_CONV_DEFAULT DL_CONV_BLOCKED

enum { SHARE_A, SHARE_B, SHARE_Y, NSHARE };

typedef struct Operand {
    int arg;                  /* DNNL_ARG_* of the primitive */
    int is_out;
    dnnl_memory_t user;       /* on our NCHW / OIHW buffer (handle set per run) */
    dnnl_memory_t inner;      /* the primitive's layout; NULL when same as user */
    dnnl_primitive_t reorder; /* user -> inner (inputs) or inner -> user (output) */
    size_t inner_bytes;
} Operand;

struct DlConv {
    DlLib *lib;
    int kind;
    int64_t g[12];
    dnnl_primitive_t prim;
    Operand op[3];
    size_t scratch_bytes;
    char desc[96];
    DlConv *next;
};

struct DlLib {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_memory_t scratch;    /* shared scratchpad (user mode) */
    float *scratch_buf;
    size_t scratch_bytes;
    float *share[NSHARE];     /* staging buffers for blocked operands */
    size_t share_bytes[NSHARE];
    DlConv *convs;
};

DlConvLayout dl_conv_default_layout(void)
{
    const char *e = getenv("DLDL_CONV_LAYOUT");
    if (e && !strcmp(e, "plain")) return DL_CONV_PLAIN;
    if (e && !strcmp(e, "blocked")) return DL_CONV_BLOCKED;
    return DL_CONV_DEFAULT;
}

static void *aligned_zalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "dldl: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

DlLib *dl_lib_new(int nthreads, char **err)
{
    DlLib *lib = dl_xcalloc(1, sizeof *lib);
    dnnl_status_t st = dnnl_engine_create(&lib->eng, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&lib->stream, lib->eng, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        *err = dl_xasprintf("oneDNN: cannot create the CPU engine (%s)", dnnl_status2str(st));
        dl_lib_free(lib);
        return NULL;
    }
    (void)nthreads; /* oneDNN uses the OpenMP team size set by the executor */
    openblas_set_num_threads(1);
    return lib;
}

void dl_lib_free(DlLib *lib)
{
    if (!lib) return;
    for (DlConv *c = lib->convs, *next; c; c = next) {
        next = c->next;
        if (c->prim) dnnl_primitive_destroy(c->prim);
        for (int k = 0; k < 3; k++) {
            if (c->op[k].user) dnnl_memory_destroy(c->op[k].user);
            if (c->op[k].inner) dnnl_memory_destroy(c->op[k].inner);
            if (c->op[k].reorder) dnnl_primitive_destroy(c->op[k].reorder);
        }
        free(c);
    }
    if (lib->scratch) dnnl_memory_destroy(lib->scratch);
    free(lib->scratch_buf);
    for (int k = 0; k < NSHARE; k++) free(lib->share[k]);
    if (lib->stream) dnnl_stream_destroy(lib->stream);
    if (lib->eng) dnnl_engine_destroy(lib->eng);
    free(lib);
}

void dl_lib_finalize(DlLib *lib)
{
    if (lib->scratch_bytes && !lib->scratch_buf) {
        lib->scratch_buf = aligned_zalloc(lib->scratch_bytes);
        dnnl_memory_desc_t md;
        dnnl_dims_t d = {(dnnl_dim_t)lib->scratch_bytes};
        dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_u8, dnnl_a);
        dnnl_memory_create(&lib->scratch, &md, lib->eng, lib->scratch_buf);
    }
    for (int k = 0; k < NSHARE; k++)
        if (lib->share_bytes[k] && !lib->share[k]) lib->share[k] = aligned_zalloc(lib->share_bytes[k]);
}

/* ---- convolution -------------------------------------------------------- */

static void md_plain(dnnl_memory_desc_t *md, int64_t a, int64_t b, int64_t c, int64_t d,
                     dnnl_format_tag_t tag)
{
    dnnl_dims_t dims = {a, b, c, d};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

/* The op descriptor of kind for the given src/weights/dst descriptors. */
static dnnl_status_t conv_desc(dnnl_convolution_desc_t *cd, int kind, const int64_t *g,
                               const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                               const dnnl_memory_desc_t *dst)
{
    int64_t s = g[7], p = g[8], d = g[11];
    dnnl_dims_t strides = {s, s}, pl = {p, p}, dil = {d, d};
    /* right padding: what the last output's window reaches past the input, the taps spanning (k-1)(d+1)+1 */
    dnnl_dims_t pr = {(g[9] - 1) * s + (g[5] - 1) * (d + 1) + 1 - g[2] - p,
                      (g[10] - 1) * s + (g[6] - 1) * (d + 1) + 1 - g[3] - p};
    switch (kind) {
    case 1:
        return dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct,
                                                          src, wei, NULL, dst, strides, dil, pl, pr);
    case 2:
        return dnnl_dilated_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, src, wei, dst,
                                                                strides, dil, pl, pr);
    default:
        return dnnl_dilated_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, src, wei,
                                                                   NULL, dst, strides, dil, pl, pr);
    }
}

/* Bind operand k: its user descriptor (plain) and the primitive's chosen one. */
static dnnl_status_t bind(DlConv *c, int k, int arg, int is_out, const dnnl_memory_desc_t *user_md,
                          const_dnnl_primitive_desc_t pd)
{
    DlLib *lib = c->lib;
    Operand *o = &c->op[k];
    o->arg = arg;
    o->is_out = is_out;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    dnnl_status_t st = dnnl_memory_create(&o->user, user_md, lib->eng, DNNL_MEMORY_NONE);
    if (st != dnnl_success || dnnl_memory_desc_equal(md, user_md)) return st;
    st = dnnl_memory_create(&o->inner, md, lib->eng, DNNL_MEMORY_NONE);
    if (st != dnnl_success) return st;
    o->inner_bytes = dnnl_memory_desc_get_size(md);
    if (o->inner_bytes > lib->share_bytes[k]) lib->share_bytes[k] = o->inner_bytes;
    dnnl_primitive_desc_t rpd;
    st = is_out ? dnnl_reorder_primitive_desc_create(&rpd, md, lib->eng, user_md, lib->eng, NULL)
                : dnnl_reorder_primitive_desc_create(&rpd, user_md, lib->eng, md, lib->eng, NULL);
    if (st != dnnl_success) return st;
    st = dnnl_primitive_create(&o->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

static const char *tag_name(const DlConv *c)
{
    for (int k = 0; k < 3; k++)
        if (c->op[k].inner) return "blocked";
    return "nchw";
}

DlConv *dl_conv_create(DlLib *lib, int kind, const int64_t g[12], DlConvLayout layout, char **err)
{
    DlConv *c = dl_xcalloc(1, sizeof *c);
    c->lib = lib;
    c->kind = kind;
    memcpy(c->g, g, sizeof c->g);
    dnnl_memory_desc_t x, w, y, xa, wa, ya;
    md_plain(&x, g[0], g[1], g[2], g[3], dnnl_nchw);
    md_plain(&w, g[4], g[1], g[5], g[6], dnnl_oihw);
    md_plain(&y, g[0], g[4], g[9], g[10], dnnl_nchw);
    dnnl_format_tag_t any = layout == DL_CONV_BLOCKED ? dnnl_format_tag_any : 0;
    md_plain(&xa, g[0], g[1], g[2], g[3], any ? any : dnnl_nchw);
    md_plain(&wa, g[4], g[1], g[5], g[6], any ? any : dnnl_oihw);
    md_plain(&ya, g[0], g[4], g[9], g[10], any ? any : dnnl_nchw);

    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_convolution_desc_t fd, cd;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    /* the forward descriptor: the primitive itself or the hint of a backward one */
    if (st == dnnl_success) st = conv_desc(&fd, 1, g, &xa, &wa, &ya);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&fpd, &fd, kind == 1 ? attr : NULL, lib->eng, NULL);
    if (st == dnnl_success && kind != 1) {
        st = kind == 2 ? conv_desc(&cd, 2, g, &xa, &wa, &ya) : conv_desc(&cd, 3, g, &xa, &wa, &ya);
        if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &cd, attr, lib->eng, fpd);
    } else if (st == dnnl_success) {
        pd = fpd;
        fpd = NULL;
    }
    if (st == dnnl_success) st = dnnl_primitive_create(&c->prim, pd);
    if (st == dnnl_success) {
        /* operands in the plan's argument order */
        if (kind == 1) {
            st = bind(c, 0, DNNL_ARG_SRC, 0, &x, pd);
            if (st == dnnl_success) st = bind(c, 1, DNNL_ARG_WEIGHTS, 0, &w, pd);
            if (st == dnnl_success) st = bind(c, 2, DNNL_ARG_DST, 1, &y, pd);
        } else if (kind == 2) {
            st = bind(c, 0, DNNL_ARG_DIFF_DST, 0, &y, pd);
            if (st == dnnl_success) st = bind(c, 1, DNNL_ARG_WEIGHTS, 0, &w, pd);
            if (st == dnnl_success) st = bind(c, 2, DNNL_ARG_DIFF_SRC, 1, &x, pd);
        } else {
            st = bind(c, 0, DNNL_ARG_SRC, 0, &x, pd);
            if (st == dnnl_success) st = bind(c, 1, DNNL_ARG_DIFF_DST, 0, &y, pd);
            if (st == dnnl_success) st = bind(c, 2, DNNL_ARG_DIFF_WEIGHTS, 1, &w, pd);
        }
    }
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        c->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (c->scratch_bytes > lib->scratch_bytes) lib->scratch_bytes = c->scratch_bytes;
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(c->desc, sizeof c->desc, "%s (%s)", tag_name(c), impl ? impl : "?");
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    c->next = lib->convs;
    lib->convs = c; /* freed with the library, also on failure */
    if (st != dnnl_success) {
        static const char *const kn[] = {"", "forward", "backward data", "backward weights"};
        *err = dl_xasprintf("conv %s %" PRId64 "x%" PRId64 " s%" PRId64 " p%" PRId64
                            " [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "] -> %" PRId64
                            " channels: oneDNN: %s",
                            kn[kind >= 1 && kind <= 3 ? kind : 0], g[5], g[6], g[7], g[8], g[0],
                            g[1], g[2], g[3], g[4], dnnl_status2str(st));
        return NULL;
    }
    return c;
}

static dnnl_status_t exec_reorder(DlLib *lib, const Operand *o)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, o->is_out ? o->inner : o->user},
                            {DNNL_ARG_TO, o->is_out ? o->user : o->inner}};
    return dnnl_primitive_execute(o->reorder, lib->stream, 2, a);
}

int dl_conv_run(DlConv *c, float *a, float *b, float *y, int *status)
{
    DlLib *lib = c->lib;
    float *ptr[3] = {a, b, y};
    dnnl_exec_arg_t args[4];
    int nargs = 0;
    dnnl_status_t st = dnnl_success;
    for (int k = 0; k < 3 && st == dnnl_success; k++) {
        Operand *o = &c->op[k];
        st = dnnl_memory_set_data_handle(o->user, ptr[k]);
        if (o->inner && st == dnnl_success) {
            st = dnnl_memory_set_data_handle(o->inner, lib->share[k]);
            if (!o->is_out && st == dnnl_success) st = exec_reorder(lib, o);
        }
        args[nargs++] = (dnnl_exec_arg_t){o->arg, o->inner ? o->inner : o->user};
    }
    if (lib->scratch && c->scratch_bytes) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, lib->scratch};
    if (st == dnnl_success) st = dnnl_primitive_execute(c->prim, lib->stream, nargs, args);
    if (st == dnnl_success && c->op[2].inner) st = exec_reorder(lib, &c->op[2]);
    if (st == dnnl_success) st = dnnl_stream_wait(lib->stream);
    if (status) *status = (int)st;
    return st == dnnl_success ? 0 : -1;
}

double dl_conv_flops(const DlConv *c)
{
    const int64_t *g = c->g;
    return 2.0 * (double)g[0] * (double)g[4] * (double)g[9] * (double)g[10] * (double)g[1] *
           (double)g[5] * (double)g[6];
}

const char *dl_conv_describe(const DlConv *c) { return c->desc; }

/* ---- matrix product ------------------------------------------------------ */

void dl_matmul(const int64_t i[5], const float *a, const float *b, float *y)
{
    int M = (int)i[0], N = (int)i[1], K = (int)i[2], ta = (int)i[3], tb = (int)i[4];
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, 1.0f, a, ta ? M : K, b, tb ? K : N, 0.0f, y, N);
}
