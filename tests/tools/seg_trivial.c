/* seg_trivial.c - the trivial segmentation predictor (every pixel background)
 * on a plan's test split, for the end-to-end checks (tests/e2e/voc_seg_short.sh):
 * the label maps are read exactly as dldlrun reads them (dl_data_load: the
 * same split, size and nearest resize), the prediction is class 0 at every
 * pixel, and the scores come from runtime/seg_metrics.c.
 *
 * Usage: seg_trivial PLAN [DATA_ROOT]  ->  "miou M pixacc A" (percent) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../runtime/data.h"
#include "../../runtime/seg_metrics.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: seg_trivial PLAN [DATA_ROOT]\n");
        return 2;
    }
    char *err = NULL;
    DlPlan *p = dl_plan_read(argv[1], &err);
    DlDataset *d = NULL;
    DlDataOpts o = {.root = argc > 2 ? argv[2] : NULL, .nthreads = 2, .quiet = 1};
    if (!p || dl_data_load(p, &o, &d, &err) != 0 || d->mask_field < 0) {
        fprintf(stderr, "seg_trivial: %s\n", err ? err : "the plan's data has no label maps");
        return 1;
    }
    int K = 0;
    for (int t = 0; t < p->ntargets; t++)
        if (p->targets[t].kind == DL_TGT_LABEL_MAP) K = dl_target_bins(&p->targets[t]);
    size_t hw = (size_t)d->H * d->W;
    int64_t *conf = dl_xcalloc((size_t)K * K, sizeof *conf);
    uint8_t *gt = dl_xmalloc(hw), *pred = dl_xcalloc(hw, 1);
    for (int i = 0; i < d->ntest; i++) {
        dl_data_batch(d, &d->test_idx[i], 1, 0, 0, 0, NULL, NULL, gt);
        dl_confusion_add(conf, K, gt, pred, (int64_t)hw, NULL);
    }
    DlSegScores s;
    dl_seg_scores(conf, K, NULL, &s);
    printf("miou %.4f pixacc %.4f\n", 100 * s.miou, 100 * s.pixel_acc);
    free(conf), free(gt), free(pred);
    dl_data_free(d);
    dl_plan_free(p);
    return 0;
}
