/* test_http_path.c — request paths as both daemons route them: segments
 * decoded one by one, and every path that could mean something else to a
 * URL library refused (dot segments in every spelling, "//", bad escapes);
 * file names by sandboxd's rule; node paths percent-encoded back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http_path.h"

static int split(const char *raw, struct http_path *p)
{
	int r = http_path_split(raw, p);
	http_path_free(p);
	return r;
}

static void test_plain_paths(void **state)
{
	struct http_path p = {0};

	assert_int_equal(http_path_split("/v1/slots/ab%20c/files/x%2Fy", &p), 0);
	assert_int_equal(p.n, 5);
	assert_true(http_path_is(&p, 0, "v1"));
	assert_true(http_path_is(&p, 2, "ab c"));
	assert_string_equal(p.seg[4], "x/y"); /* one segment: the name check refuses it later */
	assert_false(http_path_is(&p, 5, "x"));
	http_path_free(&p);

	assert_int_equal(http_path_split("/", &p), 0);
	assert_int_equal(p.n, 0);
	http_path_free(&p);

	assert_int_equal(http_path_split("/v1/slots/", &p), 0); /* one trailing slash */
	assert_int_equal(p.n, 2);
	http_path_free(&p);

	/* names that only look like dots */
	assert_int_equal(http_path_split("/files/.../..a/a../.x/%2e%2e%2e", &p), 0);
	assert_int_equal(p.n, 6);
	assert_string_equal(p.seg[5], "...");
	http_path_free(&p);
}

static void test_dot_segments(void **state)
{
	static const char *const bad[] = {
	    "/v1/sessions/X/files/..",
	    "/v1/sessions/X/files/.",
	    "/v1/sessions/X/files/%2e%2e",
	    "/v1/sessions/X/files/%2E%2E",
	    "/v1/sessions/X/files/%2E%2e",
	    "/v1/sessions/X/files/.%2e",
	    "/v1/sessions/X/files/.%2E",
	    "/v1/sessions/X/files/%2e.",
	    "/v1/sessions/X/files/%2e",
	    "/v1/sessions/X/files/./",
	    "/v1/sessions/X/files/../..",
	    "/../v1",
	    "/./healthz",
	    "/v1/./slots",
	    "..",
	    "/v1/slots/x/../../..",
	    "/a/%2E/b",
	    "/a/../",
	};
	struct http_path p = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = http_path_split(bad[i], &p);
		http_path_free(&p);
		if (r != HTTP_PATH_DOT_SEGMENT)
			fail_msg("`%s`: %d, want HTTP_PATH_DOT_SEGMENT", bad[i], r);
	}
	assert_non_null(strstr(http_path_strerror(HTTP_PATH_DOT_SEGMENT), "`..`"));
}

static void test_empty_and_malformed(void **state)
{
	struct http_path p = {0};

	assert_int_equal(split("/v1//slots", &p), HTTP_PATH_EMPTY_SEGMENT);
	assert_int_equal(split("//v1", &p), HTTP_PATH_EMPTY_SEGMENT);
	assert_int_equal(split("/v1/slots//", &p), HTTP_PATH_EMPTY_SEGMENT);
	assert_int_equal(split("/v1/sessions//run", &p), HTTP_PATH_EMPTY_SEGMENT);
	assert_int_equal(split("/a%00b", &p), HTTP_PATH_MALFORMED);
	assert_int_equal(split("/a%2", &p), HTTP_PATH_MALFORMED);
	assert_int_equal(split("/a%zz", &p), HTTP_PATH_MALFORMED);
	assert_int_equal(split("/a%", &p), HTTP_PATH_MALFORMED);
	assert_int_equal(split("/1/2/3/4/5/6/7/8", &p), 0);
	assert_int_equal(split("/1/2/3/4/5/6/7/8/9", &p), HTTP_PATH_TOO_DEEP);
	for (int e = -4; e <= -1; e++)
		assert_true(strlen(http_path_strerror(e)) > 10);
}

static void test_file_names(void **state)
{
	char long_name[300];

	assert_null(http_path_name_invalid("x.csv"));
	assert_null(http_path_name_invalid("..."));
	assert_null(http_path_name_invalid("a b é"));
	assert_non_null(http_path_name_invalid(""));
	assert_non_null(http_path_name_invalid("."));
	assert_non_null(http_path_name_invalid(".."));
	assert_non_null(http_path_name_invalid("a/b"));
	assert_non_null(http_path_name_invalid("../x"));
	assert_non_null(http_path_name_invalid("/"));
	assert_non_null(http_path_name_invalid("a\nb"));
	assert_non_null(http_path_name_invalid("a\x7f"));
	memset(long_name, 'a', 255);
	long_name[255] = '\0';
	assert_null(http_path_name_invalid(long_name));
	long_name[255] = 'a';
	long_name[256] = '\0';
	assert_non_null(http_path_name_invalid(long_name));
}

static void test_encode(void **state)
{
	char out[64];

	assert_int_equal(http_path_encode("a.b-c_d~e", out, sizeof(out)), 0);
	assert_string_equal(out, "a.b-c_d~e");
	assert_int_equal(http_path_encode("a/b ?#%", out, sizeof(out)), 0);
	assert_string_equal(out, "a%2Fb%20%3F%23%25");
	assert_int_equal(http_path_encode("\xc3\xa9", out, sizeof(out)), 0);
	assert_string_equal(out, "%C3%A9");
	/* what is encoded decodes back to one segment, the same name */
	struct http_path p = {0};
	char path[80];
	assert_int_equal(http_path_encode("x/../y", out, sizeof(out)), 0);
	snprintf(path, sizeof(path), "/files/%s", out);
	assert_int_equal(http_path_split(path, &p), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.seg[1], "x/../y");
	http_path_free(&p);
	/* too long: refused, never cut */
	assert_int_equal(http_path_encode("abc", out, 3), -ENAMETOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(http_path_encode("a/", out, 4), -ENAMETOOLONG);
	assert_int_equal(http_path_encode("a/", out, 5), 0);
	assert_string_equal(out, "a%2F");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_paths),
	    cmocka_unit_test(test_dot_segments),
	    cmocka_unit_test(test_empty_and_malformed),
	    cmocka_unit_test(test_file_names),
	    cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
