/* fuzz_io.h - the one helper the libFuzzer harnesses share: hand the input
 * bytes to a loader that only takes a path, without touching the disk.
 *
 * The bytes go into an anonymous in-memory file (memfd_create, Linux) created
 * once per process; the loaders open it as /proc/self/fd/N, which starts a
 * fresh file description at offset 0 every time.
 */
#ifndef DL_FUZZ_IO_H
#define DL_FUZZ_IO_H

#include <stdio.h>
#include <stdlib.h>
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

#endif
