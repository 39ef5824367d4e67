/* test_schedule.c - learning-rate schedules (runtime/schedule.h).
 *
 * OneCycleLR is checked twice: against values printed offline by a Python
 * re-implementation of torch.optim.lr_scheduler.OneCycleLR.get_lr (the
 * phase loop of PyTorch 2.x, anneal 'cos', defaults; total 8 epochs x 109
 * batches = 872 steps, max_lr 0.05), and against the phase formula written
 * out again here for every step.  The step schedule is checked from a
 * spec's text (tests/ops/adam.dldl's `step(every = 10, gamma = 0.5)`, which
 * the grammar once rejected) to every step's lr, against StepLR; Adam's beta1
 * in the momentum slot, constant and cycled by onecycle.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compiler/lower.h"
#include "grammar/ast.h"
#include "runtime/schedule.h"

static DlPlan plan_with(DlKV *kv, int n)
{
    DlPlan p;
    memset(&p, 0, sizeof p);
    p.hyper = kv;
    p.nhyper = n;
    return p;
}

static void test_onecycle_pytorch_values(void **state)
{
    DlKV kv[] = {{"schedule", "onecycle"}, {"lr", "0.05"}, {"momentum", "0.9"}, {"max_lr", "0.05"}};
    DlPlan p = plan_with(kv, 4);
    DlSchedule s;
    char *err = NULL;
    assert_int_equal(dl_schedule_init(&s, &p, 8, 109, &err), 0);
    static const struct { int64_t step; double lr, mom; } want[] = {
        {0, 0.0020000000000000018, 0.94999999999999996},
        {1, 0.0020017439214081931, 0.94999636683039956},
        {100, 0.017427087100867385, 0.91786023520652626},
        {260, 0.049999372183426948, 0.85000130795119389},
        {261, 0.049999947021604568, 0.85000010595721465},
        {500, 0.033305605364414771, 0.88338892282686177},
        {871, 1.9999999999999999e-07, 0.94999999999999996},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        double lr, m;
        dl_schedule_at(&s, want[i].step, &lr, &m);
        printf("step %3lld: lr %.12g (PyTorch %.12g)  momentum %.12g (PyTorch %.12g)\n", (long long)want[i].step,
               lr, want[i].lr, m, want[i].mom);
        assert_true(fabs(lr - want[i].lr) <= 1e-12 * fmax(1.0, want[i].lr));
        assert_true(fabs(m - want[i].mom) <= 1e-12);
    }
}

/* The two-phase formula again, independently: phase 1 rises from
 * max_lr/25 to max_lr over steps 0..0.3T-1, phase 2 falls to max_lr/25/1e4
 * at step T-1; momentum mirrors it between 0.95 and 0.85. */
static void test_onecycle_formula(void **state)
{
    DlKV kv[] = {{"schedule", "onecycle"}, {"lr", "0.1"}, {"max_lr", "0.2"}};
    DlPlan p = plan_with(kv, 3);
    DlSchedule s;
    char *err = NULL;
    int64_t T = 5 * 37;
    assert_int_equal(dl_schedule_init(&s, &p, 5, 37, &err), 0);
    double e1 = 0.3 * (double)T - 1, e2 = (double)T - 1, lo = 0.2 / 25, fin = lo / 1e4;
    for (int64_t t = 0; t < T; t++) {
        double a, b, ma, mb, f;
        if (t <= e1) f = t / e1, a = lo, b = 0.2, ma = 0.95, mb = 0.85;
        else f = (t - e1) / (e2 - e1), a = 0.2, b = fin, ma = 0.85, mb = 0.95;
        double w = (1 + cos(M_PI * f)) / 2, lr, m;
        dl_schedule_at(&s, t, &lr, &m);
        assert_true(fabs(lr - (b + (a - b) * w)) < 1e-12);
        assert_true(fabs(m - (mb + (ma - mb) * w)) < 1e-12);
    }
    double lr, m;
    dl_schedule_at(&s, T + 10, &lr, &m); /* past the end: the last value */
    assert_true(fabs(lr - fin) < 1e-15);
}

static void test_other_kinds(void **state)
{
    DlSchedule s;
    char *err = NULL;
    double lr, m;
    DlKV c[] = {{"lr", "0.01"}, {"momentum", "0.9"}};
    DlPlan p = plan_with(c, 2);
    assert_int_equal(dl_schedule_init(&s, &p, 3, 10, &err), 0);
    dl_schedule_at(&s, 17, &lr, &m);
    assert_true(lr == 0.01 && m == 0.9);

    DlKV st[] = {{"schedule", "step"}, {"lr", "0.1"}, {"step_every", "2"}, {"step_gamma", "0.5"}};
    p = plan_with(st, 4);
    assert_int_equal(dl_schedule_init(&s, &p, 6, 10, &err), 0);
    dl_schedule_at(&s, 19, &lr, &m); /* epoch 1 */
    assert_true(fabs(lr - 0.1) < 1e-15);
    dl_schedule_at(&s, 20, &lr, &m); /* epoch 2 */
    assert_true(fabs(lr - 0.05) < 1e-15);
    dl_schedule_at(&s, 45, &lr, &m); /* epoch 4 */
    assert_true(fabs(lr - 0.025) < 1e-15);

    DlKV co[] = {{"schedule", "cosine"}, {"lr", "0.2"}};
    p = plan_with(co, 2);
    assert_int_equal(dl_schedule_init(&s, &p, 4, 25, &err), 0);
    dl_schedule_at(&s, 0, &lr, &m);
    assert_true(fabs(lr - 0.2) < 1e-15);
    dl_schedule_at(&s, 50, &lr, &m);
    assert_true(fabs(lr - 0.1) < 1e-12);

    DlKV bad[] = {{"schedule", "onecycel"}};
    p = plan_with(bad, 1);
    assert_int_equal(dl_schedule_init(&s, &p, 4, 25, &err), -1);
    printf("%s\n", err);
    assert_non_null(strstr(err, "'onecycel'"));
    free(err);
}

/* The hyperparameters dldlc writes for tests/ops/NAME.dldl (parsed and
 * lowered here, as the compiler does), in *p; free with the returned pool. */
static DlPool *spec_hyper(const char *name, DlPlan *p, DlSource *src)
{
    char path[64];
    snprintf(path, sizeof path, "tests/ops/%s.dldl", name);
    if (dl_source_read(src, path, NULL) != 0) fail_msg("%s: cannot read (run from the repository root)", path);
    DlPool *pool = dl_pool_new();
    DlDiag d;
    dl_diag_init(&d, src, stderr);
    AstFile *f = NULL;
    LowerResult lr;
    assert_int_equal(dl_parse(src, pool, &d, &f), 0);
    assert_int_equal(lower_file(f, pool, &d, NULL, 0, &lr), 0);
    *p = plan_with(lr.meta.hyper, lr.meta.nhyper);
    return pool;
}

/* `schedule = step(every = 10, gamma = 0.5)` (tests/ops/adam.dldl, 20 epochs)
 * from the spec's text to the lr of every step: PyTorch's StepLR(step_size =
 * 10, gamma = 0.5) stepped once per epoch, closed form lr * gamma^(e // 10)
 * for epoch e (from 0), constant within an epoch; Adam's beta1 rides in the
 * momentum slot unchanged. */
static void test_step_schedule_from_spec(void **state)
{
    DlPlan p;
    DlSource src;
    DlPool *pool = spec_hyper("adam", &p, &src);
    DlSchedule s;
    char *err = NULL;
    int64_t spe = 7;
    assert_int_equal(dl_schedule_init(&s, &p, 20, spe, &err), 0);
    assert_int_equal(s.kind, DL_SCHED_STEP);
    static const double want[] = {0.001, 0.0005}; /* epochs 0..9, 10..19 */
    for (int64_t t = 0; t < 20 * spe; t++) {
        double lr, m;
        dl_schedule_at(&s, t, &lr, &m);
        double w = want[t / spe / 10];
        if (t % spe == 0 && (t / spe) % 5 == 0)
            printf("step %3lld (epoch %2lld): lr %.17g (StepLR %.17g), beta1 %g\n", (long long)t,
                   (long long)(t / spe), lr, w, m);
        assert_true(fabs(lr - w) <= 1e-15 * w);
        assert_true(m == 0.9);
    }
    /* StepLR's own recursion, lr_e = lr_{e-1} * gamma at multiples of every, agrees to rounding */
    DlKV kv[] = {{"schedule", "step"}, {"lr", "0.1"}, {"step_every", "3"}, {"step_gamma", "0.1"}};
    DlPlan q = plan_with(kv, 4);
    assert_int_equal(dl_schedule_init(&s, &q, 12, 1, &err), 0);
    double rec = 0.1;
    for (int e = 0; e < 12; e++) {
        if (e > 0 && e % 3 == 0) rec *= 0.1;
        double lr, m;
        dl_schedule_at(&s, e, &lr, &m);
        assert_true(fabs(lr - rec) <= 4e-16 * rec);
    }
    dl_pool_free(pool);
    dl_source_free(&src);
}

/* Adam and AdamW: scalars[1] is beta1; constant schedules keep it, onecycle
 * cycles it between max_momentum and base_momentum as PyTorch's OneCycleLR
 * cycles betas[0] (tests/ops/adamw.dldl: onecycle(max_lr = 0.01), 20 epochs). */
static void test_adam_beta1_in_momentum_slot(void **state)
{
    DlSchedule s;
    char *err = NULL;
    double lr, m;
    DlKV c[] = {{"optimizer", "adam"}, {"lr", "0.001"}, {"beta1", "0.8"}, {"momentum", "0.3"}};
    DlPlan p = plan_with(c, 4);
    assert_int_equal(dl_schedule_init(&s, &p, 3, 10, &err), 0);
    dl_schedule_at(&s, 5, &lr, &m);
    assert_true(lr == 0.001 && m == 0.8);
    DlKV d[] = {{"optimizer", "sgd"}, {"lr", "0.1"}, {"beta1", "0.8"}, {"momentum", "0.3"}};
    p = plan_with(d, 4);
    assert_int_equal(dl_schedule_init(&s, &p, 3, 10, &err), 0);
    dl_schedule_at(&s, 5, &lr, &m);
    assert_true(m == 0.3);

    DlSource src;
    DlPool *pool = spec_hyper("adamw", &p, &src);
    int64_t spe = 5, T = 20 * spe;
    assert_int_equal(dl_schedule_init(&s, &p, 20, spe, &err), 0);
    assert_int_equal(s.kind, DL_SCHED_ONECYCLE);
    double e1 = 0.3 * (double)T - 1;
    dl_schedule_at(&s, 0, &lr, &m);
    assert_true(fabs(lr - 0.01 / 25) < 1e-15 && fabs(m - 0.95) < 1e-15);
    dl_schedule_at(&s, (int64_t)e1, &lr, &m); /* the peak: e1 = 29 is a whole step */
    assert_true(fabs(lr - 0.01) < 1e-15 && fabs(m - 0.85) < 1e-15);
    dl_schedule_at(&s, T - 1, &lr, &m);
    assert_true(fabs(m - 0.95) < 1e-15);
    printf("adamw onecycle: beta1 0.95 -> 0.85 at step %g -> 0.95 at step %lld\n", e1, (long long)(T - 1));
    dl_pool_free(pool);
    dl_source_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onecycle_pytorch_values),
        cmocka_unit_test(test_onecycle_formula),
        cmocka_unit_test(test_other_kinds),
        cmocka_unit_test(test_step_schedule_from_spec),
        cmocka_unit_test(test_adam_beta1_in_momentum_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
