/* fuzz.h — helpers shared by the libFuzzer targets in tests/fuzz/. */
#ifndef WARMPOOL_FUZZ_H
#define WARMPOOL_FUZZ_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file the loaders can open by name: a memfd, named
 * /proc/self/fd/N in path. Returns the fd (close it after). */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t path_size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	assert(fd >= 0);
	assert(write(fd, data, size) == (ssize_t)size);
	snprintf(path, path_size, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
