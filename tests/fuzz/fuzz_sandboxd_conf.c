/* fuzz_sandboxd_conf.c — sandboxd's INI files: sandboxd.conf
 * (sandboxd/settings.c) and the language files (sandboxd/language.c), read
 * through inih from a file. Input: byte 0 even → sandboxd.conf, odd → a
 * language file; the rest is the file. */
#include "fuzz.h"

#include "language.h"
#include "settings.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_error err = {0};
	char path[64];
	int fd, r;

	if (size < 1)
		return 0;
	fd = fuzz_file(data + 1, size - 1, path, sizeof(path));
	if (data[0] % 2 == 0) {
		struct settings s;
		r = settings_load(path, &s, &err);
		assert(r == 0 || err.msg[0]);
		settings_free(&s);
	} else {
		struct language *l = NULL;
		r = language_load(path, &l, &err);
		assert(r == 0 ? l && l->name && l->run_argv && l->run_argv[0] : err.msg[0] != 0);
		language_free(l);
	}
	close(fd);
	return 0;
}
