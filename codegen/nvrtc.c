/* nvrtc.c - compile a CUDA module to PTX with NVRTC, loaded at run time
 * (dlopen), so that dldlc builds and runs on machines without CUDA and no
 * GPU is needed to compile.  The NVRTC entry points are declared here (their
 * documented C signatures) rather than taken from <nvrtc.h>.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"

typedef int nvrtcResult;            /* NVRTC_SUCCESS = 0 */
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct Nvrtc {
    void *lib;
    const char *(*GetErrorString)(nvrtcResult);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int,
                                 const char *const *, const char *const *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
} Nvrtc;

/* Load libnvrtc once (not thread-safe: dldlc compiles from one thread).
 * Returns NULL with *why set when it is missing. */
static const Nvrtc *nvrtc_load(char **why)
{
    static Nvrtc nv;
    static int tried;
    static char reason[512];
    if (tried) {
        if (!nv.lib) *why = dl_xstrdup(reason);
        return nv.lib ? &nv : NULL;
    }
    tried = 1;
    static const char *const names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                                        "/usr/local/cuda/lib64/libnvrtc.so"};
    for (size_t i = 0; i < sizeof names / sizeof *names && !nv.lib; i++) nv.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        snprintf(reason, sizeof reason, "NVRTC not found (tried libnvrtc.so, .so.13, .so.12, "
                 "/usr/local/cuda/lib64/libnvrtc.so): %s", dlerror());
        *why = dl_xstrdup(reason);
        return NULL;
    }
#define SYM(f)                                                                       \
    do {                                                                             \
        *(void **)&nv.f = dlsym(nv.lib, "nvrtc" #f);                                 \
        if (!nv.f) {                                                                 \
            snprintf(reason, sizeof reason, "libnvrtc lacks nvrtc%s", #f);           \
            dlclose(nv.lib);                                                         \
            nv.lib = NULL;                                                           \
            *why = dl_xstrdup(reason);                                               \
            return NULL;                                                             \
        }                                                                            \
    } while (0)
    SYM(GetErrorString);
    SYM(CreateProgram);
    SYM(CompileProgram);
    SYM(GetPTXSize);
    SYM(GetPTX);
    SYM(GetProgramLogSize);
    SYM(GetProgramLog);
    SYM(DestroyProgram);
#undef SYM
    return &nv;
}

int cg_compile_ptx(const char *cuda_source, const char *arch, char **ptx, char **log)
{
    *ptx = NULL;
    *log = NULL;
    const Nvrtc *nv = nvrtc_load(log);
    if (!nv) return -1;
    nvrtcProgram prog = NULL;
    nvrtcResult r = nv->CreateProgram(&prog, cuda_source, "dldl_kernels.cu", 0, NULL, NULL);
    if (r) {
        *log = dl_xasprintf("nvrtcCreateProgram: %s", nv->GetErrorString(r));
        return -1;
    }
    char *archopt = dl_xasprintf("--gpu-architecture=%s", arch);
    const char *opts[] = {archopt, "-default-device", "--std=c++17"};
    r = nv->CompileProgram(prog, 3, opts);
    free(archopt);
    size_t n = 0;
    if (r) {
        char *plog = NULL;
        if (nv->GetProgramLogSize(prog, &n) == 0 && n > 0) {
            plog = dl_xmalloc(n + 1);
            if (nv->GetProgramLog(prog, plog)) plog[0] = 0;
            plog[n] = 0;
        }
        *log = dl_xasprintf("nvrtcCompileProgram (%s): %s\n%s", arch, nv->GetErrorString(r),
                            plog ? plog : "");
        free(plog);
        nv->DestroyProgram(&prog);
        return -1;
    }
    if ((r = nv->GetPTXSize(prog, &n)) != 0) {
        *log = dl_xasprintf("nvrtcGetPTXSize: %s", nv->GetErrorString(r));
        nv->DestroyProgram(&prog);
        return -1;
    }
    *ptx = dl_xmalloc(n + 1);
    if ((r = nv->GetPTX(prog, *ptx)) != 0) {
        *log = dl_xasprintf("nvrtcGetPTX: %s", nv->GetErrorString(r));
        free(*ptx);
        *ptx = NULL;
        nv->DestroyProgram(&prog);
        return -1;
    }
    (*ptx)[n] = 0;
    nv->DestroyProgram(&prog);
    return 0;
}
