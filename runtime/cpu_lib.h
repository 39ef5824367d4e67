/* cpu_lib.h - the library steps of a plan on the CPU: convolutions through
 * oneDNN 2.6 (C API), matrix products through OpenBLAS (cblas_sgemm).
 *
 * Our tensors are plain float32 NCHW (activations) and OIHW (conv weights),
 * at fixed arena addresses.  A DlConv is created once per plan step at load
 * time (primitive descriptor, primitive, memory objects, reorders) and then
 * run any number of times with no allocation: the scratchpad and the blocked
 * staging buffers are shared by every convolution of a DlLib (steps run one
 * after another) and allocated once by dl_lib_finalize.
 *
 * Layout modes (bench/conv_bench.c measures both on the age network):
 *   DL_CONV_PLAIN    primitives created on the nchw / oihw descriptors: no
 *                    reorders, oneDNN runs its plain-layout kernels;
 *   DL_CONV_BLOCKED  primitives created with format_tag any (oneDNN picks
 *                    nChw8c / OIhw8i8o on AVX2), and reorders from and to
 *                    our NCHW buffers inside the step.
 */
#ifndef DL_CPU_LIB_H
#define DL_CPU_LIB_H

#include <stddef.h>
#include <stdint.h>

typedef enum DlConvLayout { DL_CONV_PLAIN, DL_CONV_BLOCKED } DlConvLayout;

/* The layout the runtime uses unless told otherwise (DLDL_CONV_LAYOUT=plain|
 * blocked); chosen from bench/conv_bench.c's figures, see cpu_lib.c. */
DlConvLayout dl_conv_default_layout(void);

/* An engine, a stream and the shared buffers. */
typedef struct DlLib DlLib;
typedef struct DlConv DlConv;

/* nthreads: OpenMP threads for oneDNN; OpenBLAS is set to one thread (its
 * pthread pool fights the OpenMP team, see cpu_lib.c).  Returns NULL with
 * *err on failure. */
DlLib *dl_lib_new(int nthreads, char **err);
/* Allocate the shared scratchpad and staging buffers, sized for every
 * convolution created so far.  Call after the last dl_conv_create, before
 * the first dl_conv_run. */
void dl_lib_finalize(DlLib *lib);
void dl_lib_free(DlLib *lib);

/* kind: 1 forward (args x, w, y), 2 backward data (dy, w, dx), 3 backward
 * weights (x, dy, dw), numbered as plan.h's DL_STEP_CONV_*.  geom: B,C,H,W,
 * O,kh,kw, stride,pad, OH,OW, dilate (plan.h DlPlanStep.i; dilate is the
 * dilation minus 1, oneDNN's convention).  No bias; each call
 * overwrites its output.  Returns NULL with *err ("conv 3x3 s1 p1 [64,3,64,64]:
 * oneDNN: unimplemented") on failure. */
DlConv *dl_conv_create(DlLib *lib, int kind, const int64_t geom[12], DlConvLayout layout,
                       char **err);
/* Run one convolution on the three buffers, in the plan's argument order.
 * Returns 0, or -1 when oneDNN reports a failure (status in *status). */
int dl_conv_run(DlConv *c, float *a, float *b, float *y, int *status);
/* Floating-point operations of one call (2 * multiply-adds). */
double dl_conv_flops(const DlConv *c);
/* Which layout the primitive actually runs on ("nchw", "blocked: nChw8c ..."). */
const char *dl_conv_describe(const DlConv *c);

/* y[M,N] = op(a) op(b), row-major, op = transpose when ta / tb (plan.h
 * DL_STEP_MATMUL: i = M, N, K, ta, tb).  Overwrites y. */
void dl_matmul(const int64_t i[5], const float *a, const float *b, float *y);

#endif
