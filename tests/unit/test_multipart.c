/* test_multipart.c — the multipart/form-data reader of file uploads: the
 * bodies real clients send (requests, httpx, aiohttp, .NET, curl), binary
 * content byte for byte, and every malformed or oversized form refused
 * with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define CT "multipart/form-data; boundary=b0undary"

struct buf {
	char *p;
	size_t n;
};

static void put(struct buf *b, const void *data, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static int find(const char *ct, struct buf *b, size_t max, struct multipart_part *out, struct wp_error *err)
{
	return multipart_find(ct, b->p, b->n, "file", max, out, err);
}

static void test_requests_style_binary(void **state)
{
	/* what Python requests (urllib3) sends for files=[("file", (name, data, type))] */
	unsigned char bin[512];
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	bin[0] = 0;
	memcpy(bin + 100, "\r\n--b0undar", 11); /* almost a delimiter */
	memcpy(bin + 200, "--b0undary", 10);	/* the boundary without CRLF before it */
	memcpy(bin + 300, "\r\n\r\n", 4);
	bin[sizeof(bin) - 1] = '\r';
	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\n"
		  "Content-Type: application/octet-stream\r\n\r\n");
	put(&b, bin, sizeof(bin));
	puts_(&b, "\r\n--b0undary--\r\n");

	assert_int_equal(find(CT, &b, 1 << 20, &p, &err), 0);
	assert_int_equal(p.len, sizeof(bin));
	assert_memory_equal(p.data, bin, sizeof(bin));
	assert_string_equal(p.filename, "data.bin");
	assert_string_equal(p.content_type, "application/octet-stream");
	multipart_part_free(&p);
	free(b.p);
}

static void test_dotnet_style(void **state)
{
	/* MultipartFormDataContent: quoted boundary, unquoted parameters,
	 * filename* (RFC 5987), no part Content-Type */
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "--5e1c4d2a-0b7f-4a9e-9d3c-1f2e3d4c5b6a\r\n"
		  "Content-Disposition: form-data; name=file; filename=r\xc3\xa9sum\xc3\xa9.txt; "
		  "filename*=utf-8''r%C3%A9sum%C3%A9.txt\r\n\r\n"
		  "hello\r\n--5e1c4d2a-0b7f-4a9e-9d3c-1f2e3d4c5b6a--\r\n");
	assert_int_equal(
	    find("multipart/form-data; boundary=\"5e1c4d2a-0b7f-4a9e-9d3c-1f2e3d4c5b6a\"", &b, 100, &p, &err), 0);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	assert_string_equal(p.filename, "r\xc3\xa9sum\xc3\xa9.txt");
	assert_string_equal(p.content_type, "");
	multipart_part_free(&p);
	free(b.p);
}

static void test_aiohttp_style_other_fields_preamble(void **state)
{
	/* headers in another order, text fields before the file, a preamble,
	 * transport padding after a boundary and an epilogue */
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "this is a preamble\r\n"
		  "--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot the file\r\n"
		  "--b0undary \t\r\nContent-Type: text/plain\r\ncontent-disposition: FORM-DATA; NAME=\"file\"; "
		  "FILENAME=\"a b.txt\"\r\nContent-Length: 3\r\n\r\nabc\r\n"
		  "--b0undary--\r\nepilogue --b0undary junk");
	assert_int_equal(find("Multipart/Form-Data;boundary=b0undary", &b, 3, &p, &err), 0);
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.data, "abc", 3);
	assert_string_equal(p.filename, "a b.txt");
	assert_string_equal(p.content_type, "text/plain");
	multipart_part_free(&p);
	free(b.p);
}

static void test_empty_file_and_escaped_name(void **state)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"say \\\"hi\\\".txt\"\r\n\r\n"
		  "\r\n--b0undary--");
	assert_int_equal(find(CT, &b, 0, &p, &err), 0);
	assert_int_equal(p.len, 0);
	assert_string_equal(p.filename, "say \"hi\".txt");
	multipart_part_free(&p);
	free(b.p);
}

static void test_no_filename(void **state)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxyz\r\n--b0undary--\r\n");
	assert_int_equal(find(CT, &b, 10, &p, &err), 0);
	assert_null(p.filename);
	assert_int_equal(p.len, 3);
	multipart_part_free(&p);
	free(b.p);
}

static void test_size_bound(void **state)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n0123456789\r\n"
		  "--b0undary--\r\n");
	assert_int_equal(find(CT, &b, 10, &p, &err), 0);
	multipart_part_free(&p);
	assert_int_equal(find(CT, &b, 9, &p, &err), -EFBIG);
	assert_string_equal(err.msg, "the `file` part is 10 bytes, more than the limit of 9");
	assert_null(p.filename);
	assert_null(p.data);
	free(b.p);
}

static void test_missing_and_duplicate_field(void **state)
{
	struct buf b = {0}, d = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"x\"\r\n\r\nx\r\n"
		  "--b0undary--\r\n");
	assert_int_equal(find(CT, &b, 10, &p, &err), -ENOENT);
	assert_string_equal(err.msg, "the form has no `file` part");

	puts_(&d, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nx\r\n"
		  "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"y\"\r\n\r\ny\r\n"
		  "--b0undary--\r\n");
	assert_int_equal(find(CT, &d, 10, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "the form has more than one `file` part");
	assert_null(p.filename);
	free(b.p);
	free(d.p);
}

static void test_content_type_refused(void **state)
{
	char out[71];
	struct wp_error err = {0};
	char long_b[128];

	assert_int_equal(multipart_boundary(NULL, out, sizeof(out), &err), -EINVAL);
	assert_int_equal(multipart_boundary("application/octet-stream", out, sizeof(out), &err), -EINVAL);
	assert_string_equal(err.msg, "Content-Type `application/octet-stream` is not multipart/form-data");
	assert_int_equal(multipart_boundary("multipart/form-data", out, sizeof(out), &err), -EINVAL);
	assert_string_equal(err.msg, "multipart/form-data without a boundary parameter");
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=\"\"", out, sizeof(out), &err), -EINVAL);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=a\"b", out, sizeof(out), &err), -EINVAL);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=\"unterminated", out, sizeof(out), &err),
			 -EINVAL);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=x; boundary=y", out, sizeof(out), &err),
			 -EINVAL);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=\"ends in space \"", out, sizeof(out), &err),
			 -EINVAL);
	snprintf(long_b, sizeof(long_b), "multipart/form-data; boundary=%071d", 7);
	assert_int_equal(multipart_boundary(long_b, out, sizeof(out), &err), -EINVAL);
	snprintf(long_b, sizeof(long_b), "multipart/form-data; boundary=%070d", 7);
	assert_int_equal(multipart_boundary(long_b, out, sizeof(out), &err), 0);
	assert_int_equal(strlen(out), 70);
	assert_int_equal(
	    multipart_boundary("multipart/form-data; charset=utf-8; boundary=\"a:b/c?d\"; x=1", out, sizeof(out), &err),
	    0);
	assert_string_equal(out, "a:b/c?d");
}

static void expect_malformed(const char *body, const char *msg)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	puts_(&b, body);
	assert_int_equal(find(CT, &b, 1 << 20, &p, &err), -EINVAL);
	if (msg)
		assert_string_equal(err.msg, msg);
	assert_null(p.filename);
	free(b.p);
}

static void test_malformed_bodies(void **state)
{
	expect_malformed("", "the body has no multipart boundary `b0undary`");
	expect_malformed("--other\r\n\r\nx\r\n--other--", "the body has no multipart boundary `b0undary`");
	/* truncated: no closing delimiter after the content */
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
			 "truncated multipart body: no boundary after part 1");
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n", "truncated part headers");
	expect_malformed("--b0undary", "malformed or truncated multipart body after a boundary");
	/* bare LF line ends */
	expect_malformed("--b0undary\nContent-Disposition: form-data; name=\"file\"\n\nabc\n--b0undary--\n", NULL);
	/* a boundary followed by junk */
	expect_malformed("--b0undaryX\r\n\r\n", "malformed or truncated multipart body after a boundary");
	/* no Content-Disposition, or not form-data, or without a name */
	expect_malformed("--b0undary\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b0undary--",
			 "a part without Content-Disposition: form-data");
	expect_malformed("--b0undary\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\nabc\r\n--b0undary--",
			 "Content-Disposition `attachment` is not form-data");
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nabc\r\n--b0undary--",
			 "a form-data part without a name");
	/* folded header, control character, missing colon */
	expect_malformed("--b0undary\r\nContent-Disposition: form-data;\r\n name=\"file\"\r\n\r\nabc\r\n--b0undary--",
			 NULL);
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"fi\x01le\"\r\n\r\nabc\r\n--b0undary--",
			 "control character in a part header");
	expect_malformed("--b0undary\r\nno colon here\r\n\r\nabc\r\n--b0undary--", "malformed part header line");
	/* encodings other than binary */
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n"
			 "Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--b0undary--",
			 "Content-Transfer-Encoding `base64` is not supported");
	/* filename* that does not decode, with no plain filename to fall back on */
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename*=utf-8''a%00b\r\n\r\n"
			 "abc\r\n--b0undary--",
			 "filename* is not valid UTF-8 percent-encoding (RFC 5987)");
	expect_malformed("--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename*=latin1''a\r\n\r\n"
			 "abc\r\n--b0undary--",
			 NULL);
}

static void test_header_bounds(void **state)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};
	char line[200];

	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n");
	memset(line, 'a', sizeof(line));
	for (int i = 0; i < 50; i++) {
		puts_(&b, "X-Pad: ");
		put(&b, line, sizeof(line));
		puts_(&b, "\r\n");
	}
	puts_(&b, "\r\nabc\r\n--b0undary--");
	assert_int_equal(find(CT, &b, 100, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "part headers longer than 8192 bytes");
	free(b.p);
}

static void test_too_many_parts(void **state)
{
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};

	for (int i = 0; i < MULTIPART_MAX_PARTS; i++)
		puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n");
	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n1\r\n");
	puts_(&b, "--b0undary--\r\n");
	assert_int_equal(find(CT, &b, 100, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "more than 64 parts");
	free(b.p);
}

static void test_large_binary(void **state)
{
	/* 4 MiB of every byte value, found without copying */
	size_t n = 4u << 20;
	struct buf b = {0};
	struct multipart_part p;
	struct wp_error err = {0};
	char *data = malloc(n);

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i ^ (i >> 8) ^ (i >> 16));
	puts_(&b, "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big\"\r\n\r\n");
	size_t off = b.n;
	put(&b, data, n);
	puts_(&b, "\r\n--b0undary--\r\n");
	assert_int_equal(find(CT, &b, n, &p, &err), 0);
	assert_ptr_equal(p.data, b.p + off);
	assert_int_equal(p.len, n);
	assert_memory_equal(p.data, data, n);
	multipart_part_free(&p);
	free(data);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests_style_binary),
	    cmocka_unit_test(test_dotnet_style),
	    cmocka_unit_test(test_aiohttp_style_other_fields_preamble),
	    cmocka_unit_test(test_empty_file_and_escaped_name),
	    cmocka_unit_test(test_no_filename),
	    cmocka_unit_test(test_size_bound),
	    cmocka_unit_test(test_missing_and_duplicate_field),
	    cmocka_unit_test(test_content_type_refused),
	    cmocka_unit_test(test_malformed_bodies),
	    cmocka_unit_test(test_header_bounds),
	    cmocka_unit_test(test_too_many_parts),
	    cmocka_unit_test(test_large_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
