/* hex.h — the value of one hexadecimal digit, or -1. Shared by the percent
 * decoding of paths, multipart and token digests. */
#ifndef WARMPOOL_HEX_H
#define WARMPOOL_HEX_H

static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
