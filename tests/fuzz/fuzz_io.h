/* fuzz_io.h - the one helper the libFuzzer harnesses share: hand the input
 * bytes to a loader that only takes a path, without touching the disk.
 *
 * The bytes go into an anonymous in-memory file (memfd_create, Linux) created
 * once per process; the loaders open it as /proc/self/fd/N, which starts a
 * fresh file description at offset 0 every time.
 */
#ifndef DL_FUZZ_IO_H
#define DL_FUZZ_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replace the contents of the process's memfd by data[0..size) and return its
 * path ("/proc/self/fd/N", a static buffer).  Aborts if the kernel refuses:
 * that is a broken harness, not a finding. */
static const char *fuzz_bytes_path(const void *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("dldl-fuzz", MFD_CLOEXEC);
        if (fd < 0) { perror("fuzz: memfd_create"); abort(); }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) { perror("fuzz: ftruncate"); abort(); }
    const char *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(fd, p + done, size - done, (off_t)done);
        if (k <= 0) { perror("fuzz: pwrite"); abort(); }
        done += (size_t)k;
    }
    return path;
}

#ifdef DL_PLAN_MAGIC /* the plan harnesses (common/plan.h included first) */
#include "common/util.h"

/* A plan file around payload data[0..size): the 32-byte header of
 * docs/plan-format.md (magic, version, flags 0, payload length, XXH3-64 of
 * the payload recomputed), so that every input gets past the checksum to the
 * reader's checks.  Returns its path (fuzz_bytes_path). */
__attribute__((unused)) static const char *fuzz_plan_path(const uint8_t *data, size_t size)
{
    unsigned char *file = malloc(32 + size);
    if (!file) { perror("fuzz: malloc"); abort(); }
    uint64_t h[4] = {0, DL_PLAN_VERSION, size, dl_hash64(data, size)}; /* flags 0 in the version's high half */
    memcpy(file, DL_PLAN_MAGIC, 8);
    for (int i = 0; i < 8; i++) file[8 + i] = (unsigned char)(h[1] >> (8 * i));
    for (int i = 0; i < 8; i++) file[16 + i] = (unsigned char)(h[2] >> (8 * i));
    for (int i = 0; i < 8; i++) file[24 + i] = (unsigned char)(h[3] >> (8 * i));
    if (size) memcpy(file + 32, data, size);
    const char *path = fuzz_bytes_path(file, 32 + size);
    free(file);
    return path;
}
#endif

#endif
