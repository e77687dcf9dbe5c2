/* fuzz_multipart.c — an Azure file upload: lib/multipart.c on a hostile
 * Content-Type and body. Input: the Content-Type up to the first newline,
 * then the body. The part found must lie inside the body. */
#include "multipart.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct multipart_part part;
	struct wp_error err = {0};
	char boundary[71], *ct, *body;
	size_t ct_len, body_len;
	int r;

	if (!nl)
		return 0;
	ct_len = (size_t)(nl - data);
	body_len = size - ct_len - 1;
	ct = strndup((const char *)data, ct_len); /* a header value: stops at a NUL */
	body = malloc(body_len ? body_len : 1);	  /* exact size: ASan sees a read past it */
	assert(ct && body);
	memcpy(body, nl + 1, body_len);
	r = multipart_boundary(ct, boundary, sizeof(boundary), &err);
	assert(r == 0 || (r == -EINVAL && err.msg[0]));
	if (r == 0)
		assert(strlen(boundary) >= 1 && strlen(boundary) <= 70);
	memset(&err, 0, sizeof(err));
	r = multipart_find(ct, body, body_len, "file", 4096, &part, &err);
	if (r == 0) {
		assert(part.data >= body && part.data + part.len <= body + body_len);
		assert(part.len <= 4096);
		assert(strlen(part.content_type) < sizeof(part.content_type));
		if (part.filename)
			assert(strlen(part.filename) < body_len);
	} else {
		assert(r == -EINVAL || r == -ENOENT || r == -EFBIG || r == -ENOMEM);
		assert(err.msg[0]);
		assert(!part.filename && !part.data);
	}
	multipart_part_free(&part);
	free(ct);
	free(body);
	return 0;
}
