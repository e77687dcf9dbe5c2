/* fuzz_poold_conf.c — poold.conf (poold/settings.c: listeners, nodes,
 * pools, per-pool limits as JSON, [auth] token digests), read through inih
 * from a file. */
#include "fuzz.h"

#include "settings.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_error err = {0};
	struct psettings s;
	char path[64];
	int fd = fuzz_file(data, size, path, sizeof(path)), r;

	memset(&s, 0, sizeof(s));
	r = psettings_load(path, &s, &err);
	assert(r == 0 || err.msg[0]);
	psettings_free(&s);
	close(fd);
	return 0;
}
