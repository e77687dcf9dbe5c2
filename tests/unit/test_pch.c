/* test_pch.c — the precompiled header's flags come from the compile line,
 * and its stamp changes (a rebuild) when the flags or the compiler change,
 * not when only the output name or include dirs do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pch.h"

static char **flags_of(const char *line, const char *source)
{
	char **argv = NULL;
	char **f;

	assert_int_equal(config_split_argv(line, &argv), 0);
	f = pch_build_flags(argv, source);
	config_argv_free(argv);
	assert_non_null(f);
	return f;
}

static void test_flags_are_the_compile_lines_without_io_and_paths(void **state)
{
	char **f = flags_of("/usr/bin/g++ -O2 -std=gnu++17 -I/opt/warmpool-pch -o main main.cpp -lm", "main.cpp");

	assert_string_equal(f[0], "-O2");
	assert_string_equal(f[1], "-std=gnu++17");
	assert_null(f[2]);
	config_argv_free(f);
	f = flags_of("/usr/bin/g++ -I /x -DONLINE_JUDGE -O2 -fuse-ld=gold -o main -Wl,-O1 main.cpp -L/y -l m", "main.cpp");
	assert_string_equal(f[0], "-DONLINE_JUDGE");
	assert_string_equal(f[1], "-O2");
	assert_null(f[2]);
	config_argv_free(f);
}

static uint64_t key_of(const char *line, const struct stat *st, const char *version)
{
	char **f = flags_of(line, "main.cpp");
	uint64_t k = pch_key("/usr/bin/g++", st, version, "bits/stdc++.h", f);

	config_argv_free(f);
	return k;
}

static void test_key_changes_with_flags_and_compiler(void **state)
{
	struct stat st = {.st_size = 1000, .st_ino = 42};
	const char *v = "g++ (Debian 12.2.0-14) 12.2.0";
	uint64_t base = key_of("/usr/bin/g++ -O2 -std=gnu++17 -o main main.cpp", &st, v);

	assert_int_not_equal(base, 0);
	/* same flags: same key, whatever the output name, include dirs or linker */
	assert_true(base == key_of("/usr/bin/g++ -O2 -std=gnu++17 -I/opt/warmpool-pch -o a.out main.cpp", &st, v));
	assert_true(base == key_of("/usr/bin/g++ -O2 -std=gnu++17 -fuse-ld=gold -o main main.cpp", &st, v));
	/* other flags: another key, so another build */
	assert_true(base != key_of("/usr/bin/g++ -O3 -std=gnu++17 -o main main.cpp", &st, v));
	assert_true(base != key_of("/usr/bin/g++ -O2 -std=gnu++20 -o main main.cpp", &st, v));
	assert_true(base != key_of("/usr/bin/g++ -std=gnu++17 -O2 -o main main.cpp", &st, v));
	/* a new compiler binary (mtime, size) or version: another key */
	struct stat st2 = st;
	st2.st_mtim.tv_sec = 1;
	assert_true(base != key_of("/usr/bin/g++ -O2 -std=gnu++17 -o main main.cpp", &st2, v));
	st2 = st;
	st2.st_size = 1001;
	assert_true(base != key_of("/usr/bin/g++ -O2 -std=gnu++17 -o main main.cpp", &st2, v));
	assert_true(base != key_of("/usr/bin/g++ -O2 -std=gnu++17 -o main main.cpp", &st, "g++ 13.1.0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_are_the_compile_lines_without_io_and_paths),
	    cmocka_unit_test(test_key_changes_with_flags_and_compiler),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
