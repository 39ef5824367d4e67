/* small_net.h - the small network of the back-end unit tests (test_fuse,
 * test_memplan): conv 3x3 -> batch norm -> ReLU -> max-pool 2 -> global
 * average pool -> linear -> the DLDL loss tail, built by hand as lowering
 * builds it (train mode), then differentiated by ad_differentiate.
 *
 *   x [B,3,8,8] -> conv w[8,3,3,3] -> y [B,8,8,8] -> bn (stats, gamma, beta,
 *   running) -> relu -> maxpool -> [B,8,4,4] -> gap -> [B,8] -> matmul
 *   W[K,8]^T + bias -> logits [B,K] -> log-softmax, KL, expectation, L1.
 * Header-only (static functions), included once per test binary.
 */
#ifndef DL_TEST_SMALL_NET_H
#define DL_TEST_SMALL_NET_H

#include "../../compiler/autodiff.h"
#include "../ref/gbuild.h"

#define SN_B 4
#define SN_K 5

static const float sn_bins[SN_K] = {0, 1, 2, 3, 4};

/* Build the forward train graph in pool; with_grad: also run autodiff.
 * Returns NULL (after printing why) when autodiff or the verifier fails. */
static Graph *small_net(DlPool *pool, int with_grad)
{
    Graph *g = graph_new(pool, SN_B);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(SN_B, 3, 8, 8), (GAttr){.input = {IN_IMAGE}}, "input.image");
    uint32_t t = gb(g, OP_INPUT, GB_NOIN, GB_SH(SN_B, SN_K), (GAttr){.input = {IN_TARGET}}, "input.target");
    uint32_t l = gb(g, OP_INPUT, GB_NOIN, GB_SH(SN_B, 1), (GAttr){.input = {IN_LABEL}}, "input.label");
    gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    uint32_t w = gb(g, OP_PARAM, GB_NOIN, GB_SH(8, 3, 3, 3), (GAttr){.init = {INIT_KAIMING_UNIFORM, 27}}, "c1.weight");
    uint32_t y = gb(g, OP_CONV2D, GB_IN(x, w), GB_SH(SN_B, 8, 8, 8), (GAttr){.conv = {3, 3, 1, 1}}, "c1.y");
    GAttr bn = {.bn = {1e-5f, 0.1f}};
    uint32_t st = gb(g, OP_BN_STATS, GB_IN(y), GB_SH(2, 8), bn, "c1.stats");
    uint32_t ga = gb(g, OP_PARAM, GB_NOIN, GB_SH(8), (GAttr){.init = {INIT_ONES, 0}}, "c1.gamma");
    uint32_t be = gb(g, OP_PARAM, GB_NOIN, GB_SH(8), (GAttr){.init = {INIT_ZEROS, 0}}, "c1.beta");
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, 8), GB_NOATTR, "c1.running");
    uint32_t z = gb(g, OP_BN_APPLY, GB_IN(y, st, ga, be), GB_SH(SN_B, 8, 8, 8), bn, "c1.z");
    uint32_t r = gb(g, OP_RELU, GB_IN(z), GB_SH(SN_B, 8, 8, 8), GB_NOATTR, "c1.r");
    uint32_t br = gb(g, OP_BN_RUNNING, GB_IN(st, run), GB_SH(2, 8), bn, "c1.running.update");
    g->nodes[br].inplace = run;
    uint32_t p = gb(g, OP_MAXPOOL, GB_IN(r), GB_SH(SN_B, 8, 4, 4), (GAttr){.pool = {2, 2, 0}}, "p1");
    uint32_t gp = gb(g, OP_GAP, GB_IN(p), GB_SH(SN_B, 8), GB_NOATTR, "g");
    uint32_t W = gb(g, OP_PARAM, GB_NOIN, GB_SH(SN_K, 8), (GAttr){.init = {INIT_KAIMING_UNIFORM, 8}}, "fc.weight");
    uint32_t bb = gb(g, OP_PARAM, GB_NOIN, GB_SH(SN_K), (GAttr){.init = {INIT_BIAS_UNIFORM, 8}}, "fc.bias");
    uint32_t mm = gb(g, OP_MATMUL, GB_IN(gp, W), GB_SH(SN_B, SN_K), (GAttr){.mm = {0, 1}}, "fc.mm");
    uint32_t lg = gb(g, OP_BIAS_ADD, GB_IN(mm, bb), GB_SH(SN_B, SN_K), GB_NOATTR, "logits");
    uint32_t bins = gb(g, OP_CONST, GB_NOIN, GB_SH(1, SN_K), (GAttr){.cst = {sn_bins}}, "bins");
    gb_loss_tail(g, lg, t, l, bins, 1.0f);
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    if (graph_verify(g, "small_net", &diag)) return NULL;
    if (with_grad && (ad_differentiate(g, &diag) || graph_verify(g, "autodiff", &diag))) return NULL;
    return g;
}

#endif
