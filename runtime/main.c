/* main.c - dldlrun: train, evaluate or predict with a compiled plan.
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage.  Every error is one line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/diag.h"
#include "../common/plan.h"
#include "../common/util.h"
#include "checkpoint.h"
#include "cuda_dev.h"
#include "comm.h"
#include "train.h"

static const char USAGE[] =
    "usage: dldlrun PLAN --train [--epochs N] [--data DIR] [--out DIR] [--resume | --overwrite]\n"
    "                            [--weights FILE] [--skip-bad] [--threads N] [--profile]\n"
    "                            [--device cpu|cuda|cuda-emu|auto] [--quiet]\n"
    "       dldlrun PLAN --cv [--epochs N] [--data DIR] [--out DIR] [--resume | --overwrite]\n"
    "                         [--threads N] [--quiet]\n"
    "       dldlrun PLAN --eval [--weights FILE] [--data DIR]\n"
    "       dldlrun PLAN --predict [--weights FILE] IMAGE...\n"
    "\n"
    "  --train          train the plan's network; after each epoch evaluate on the test split\n"
    "                   and save OUT/weights.safetensors, OUT/checkpoint.safetensors and\n"
    "                   a row of OUT/history.csv (loss and metrics per epoch).\n"
    "                   The plan's batch size is fixed, so the last partial training batch\n"
    "                   of each epoch is dropped (evaluation pads its last batch instead).\n"
    "  --cv             cross-validation: train and evaluate every fold of the plan's kfold(k)\n"
    "                   or folds(path) split (OUT/foldN/), print each metric as mean +- std\n"
    "                   over the folds and write OUT/cv.csv and OUT/cv.json\n"
    "  --eval           print the plan's metrics on the test split for saved weights\n"
    "  --predict        print, per image, the expectation per axis and the top-3 bins; for a\n"
    "                   per-pixel head the classes' shares of its pixels, and its label map\n"
    "                   written as OUT/masks/NAME.png (VOC palette indices, the image's size)\n"
    "  --epochs N       epochs to train (default: the plan's)\n"
    "  --data DIR       data root (default: $DLDL_DATA, else ../shared/data)\n"
    "  --out DIR        where weights and checkpoints go (default: runs/<plan name>); locked\n"
    "                   while a run uses it (a second dldlrun on it is refused); a folder\n"
    "                   that holds a run is refused without --resume or --overwrite\n"
    "  --weights FILE   weights for --eval / --predict (default: OUT/weights.safetensors);\n"
    "                   with --train, fine-tune: start from FILE's tensors of the same name and\n"
    "                   shape (a weights file or checkpoint); the others keep their initialisation\n"
    "  --resume         continue from OUT/checkpoint.safetensors at the next epoch (history.csv\n"
    "                   rows after the checkpoint's epoch, left by a killed run, are dropped)\n"
    "  --overwrite      start over in an OUT that holds a run: remove its checkpoint, weights\n"
    "                   and history.csv (with --cv also cv.csv, cv.json and the folds' files)\n"
    "                   once the new run is set up; no other file is touched\n"
    "  --skip-bad       skip unreadable or unlabelable samples (counted) instead of failing\n"
    "  --threads N      threads for kernels and convolutions (default: all cores)\n"
    "  --profile        time every step and print a table at the end\n"
    "  --device D       where the programs run: cpu; cuda (the first NVIDIA GPU: an error\n"
    "                   saying why when there is none usable); cuda-emu (the CUDA backend on\n"
    "                   its emulated device: a test double on the CPU, for testing, slow);\n"
    "                   auto (cuda when usable, else cpu, saying why on stderr).  Default: cpu\n"
    "  --quiet          no progress output\n"
    "\n"
    "environment: DLDL_DATA (data root), DLDL_CACHE (kernel cache, default ~/.cache/dldl),\n"
    "  CC (the C compiler for kernels), DLDL_DEBUG=1 (print the compiler command),\n"
    "  DLDL_DEBUG=2 (check every step for NaN/Inf), DLDL_CONV_LAYOUT=plain|blocked,\n"
    "  DLDL_CUDA_GRAPH=0 (no graph capture), DLDL_CUDA_EMU_ORDER=forward|reverse|shuffle\n"
    "  (the emulated device's thread order), DLDL_LIBCUDA/LIBNVRTC/LIBCUBLAS/LIBCUDNN (files),\n"
    "  DLDL_COMM_TIMEOUT (seconds a rank waits for the others under mpirun, default 120),\n"
    "  DLDL_MPI_PLUGIN (the MPI plugin, default build/dldl_mpi.so beside dldlrun)\n"
    "\n"
    "data-parallel training (docs/parallel.md): compile with dldlc --ranks=N, then\n"
    "  mpirun -np N dldlrun PLAN --train [...]   (rank 0 prints and writes OUT)\n";

static const char *const OPTIONS[] = {"--train", "--cv", "--eval", "--predict", "--epochs", "--data", "--out",
                                      "--weights", "--resume", "--overwrite", "--skip-bad", "--threads",
                                      "--profile", "--device", "--quiet", "--help"};
#define NOPT (int)(sizeof OPTIONS / sizeof *OPTIONS)

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "dldlrun: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* Threads beyond this buy nothing on any machine dldl targets, and libgomp
 * fails on absurd counts (--threads 100000 crashed it). */
#define MAX_THREADS 1024

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "dldlrun: %s wants an integer in %d..%d, got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* The driver; images has room for argc image paths. */
static int dldlrun(int argc, char **argv, char **images)
{
    DlRunOpts o = {0};
    const char *mode = NULL, *device = "cpu";
    const char *dbg = getenv("DLDL_DEBUG");
    o.debug = dbg ? atoi(dbg) : 0;
    o.images = images;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (!o.plan_path)
                o.plan_path = a;
            else
                o.images[o.nimages++] = a;
            continue;
        }
        char *val = NULL, *eq = strchr(a, '=');
        char *name = eq ? dl_xstrndup(a, (size_t)(eq - a)) : dl_xstrdup(a);
        int takes = !strcmp(name, "--epochs") || !strcmp(name, "--data") || !strcmp(name, "--out") ||
                    !strcmp(name, "--weights") || !strcmp(name, "--threads") || !strcmp(name, "--device");
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                int rc = usage_error("option '%s' needs a value%s", name, "");
                free(name);
                return rc;
            }
        } else if (eq) {
            int rc = usage_error("option '%s' takes no value%s", name, "");
            free(name);
            return rc;
        }
        int bad = 0;
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            fputs(USAGE, stdout);
            free(name);
            return 0;
        } else if (!strcmp(name, "--train") || !strcmp(name, "--eval") || !strcmp(name, "--predict") ||
                   !strcmp(name, "--cv")) {
            if (mode && strcmp(mode, name)) {
                int rc = usage_error("%s and %s cannot be combined", mode, a);
                free(name);
                return rc;
            }
            mode = a;
        } else if (!strcmp(name, "--epochs")) bad = parse_int(name, val, 1, DL_MAX_EPOCHS, &o.epochs);
        else if (!strcmp(name, "--threads")) bad = parse_int(name, val, 1, MAX_THREADS, &o.threads);
        else if (!strcmp(name, "--data")) o.data_root = val;
        else if (!strcmp(name, "--out")) o.out_dir = val;
        else if (!strcmp(name, "--weights")) o.weights = val;
        else if (!strcmp(name, "--device")) device = val;
        else if (!strcmp(name, "--resume")) o.resume = 1;
        else if (!strcmp(name, "--overwrite")) o.overwrite = 1;
        else if (!strcmp(name, "--skip-bad")) o.skip_bad = 1;
        else if (!strcmp(name, "--profile")) o.profile = 1;
        else if (!strcmp(name, "--quiet")) o.quiet = 1;
        else {
            const char *s = dl_suggest(name, OPTIONS, NOPT);
            int rc = s ? usage_error("unknown option '%s'; did you mean '%s'?", name, s)
                       : usage_error("unknown option '%s' (see dldlrun --help)%s", name, "");
            free(name);
            return rc;
        }
        free(name);
        if (bad) return 2;
    }
    if (!o.plan_path || !mode) {
        fprintf(stderr, "%s", USAGE);
        return 2;
    }
    int dev = !strcmp(device, "auto") ? DL_DEVICE_CUDA : dl_enum_lookup(dl_device_name, DL_DEVICE_COUNT, device);
    if (dev < 0) return usage_error("unknown device '%s' (cpu, cuda, cuda-emu or auto)%s", device, "");
    o.device = (DlDevice)dev;
    if (!strcmp(mode, "--train") && o.resume && o.weights)
        return usage_error("--weights and --resume cannot be combined: --resume continues a run from its "
                           "checkpoint, which holds the weights already; --weights starts a new run from a file's "
                           "weights%s%s", "", "");
    if (o.resume && o.overwrite)
        return usage_error("--resume and --overwrite cannot be combined: --resume continues the run in OUT, "
                           "--overwrite starts it over%s%s", "", "");
    if (o.overwrite && strcmp(mode, "--train") && strcmp(mode, "--cv"))
        return usage_error("--overwrite is for --train and --cv, not %s%s", mode, "");
    if (!strcmp(mode, "--predict") && o.nimages == 0) return usage_error("--predict needs at least one IMAGE%s%s", "", "");
    if (strcmp(mode, "--predict") && o.nimages > 0)
        return usage_error("unexpected argument '%s'%s", o.images[0], "");
    if (o.device == DL_DEVICE_CUDA) { /* a usable GPU? asked before any data is loaded */
        char *why = NULL;
        if (dl_cuda_real_probe(NULL, &why) != 0) {
            int fatal = strcmp(device, "auto") != 0;
            if (fatal) fprintf(stderr, "dldlrun: --device cuda: %s\n", why);
            else if (!o.quiet) fprintf(stderr, "dldlrun: --device auto: running on the CPU: %s\n", why);
            free(why);
            if (fatal) return 1;
            o.device = DL_DEVICE_CPU;
        }
    }
    char *err = NULL;
    if (dl_comm_open(&o.comm, &err) != 0) { /* under mpirun with N > 1 processes: MPI, else NULL */
        fprintf(stderr, "dldlrun: %s\n", err);
        free(err);
        return 1;
    }
    if (o.comm && strcmp(mode, "--train")) {
        if (dl_comm_rank(o.comm) == 0)
            fprintf(stderr, "dldlrun: %s runs as one process: start it without mpirun (only --train is "
                            "data-parallel)\n", mode);
        dl_comm_close(o.comm);
        return 2;
    }
    DlPlan *p = dl_plan_read(o.plan_path, &err);
    if (!p) {
        fprintf(stderr, "dldlrun: %s\n", err);
        free(err);
        if (o.comm) dl_comm_abort(o.comm, 1);
        return 1;
    }
    int rc = !strcmp(mode, "--train") ? dl_train(p, &o)
           : !strcmp(mode, "--cv")    ? dl_cv(p, &o)
           : !strcmp(mode, "--eval")  ? dl_eval(p, &o)
                                      : dl_predict(p, &o);
    dl_plan_free(p);
    if (o.comm && rc != 0) dl_comm_abort(o.comm, rc); /* the others may wait in a collective: stop them all */
    dl_comm_close(o.comm);
    return rc;
}

int main(int argc, char **argv)
{
    char **images = dl_xcalloc((size_t)argc, sizeof *images);
    int rc = dldlrun(argc, argv, images);
    free(images); /* on every path, usage errors too, so LeakSanitizer stays quiet */
    return rc;
}
