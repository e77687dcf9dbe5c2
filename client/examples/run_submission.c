/* run_submission — judge one program against test cases with libwarmpool.
 *
 *   cc run_submission.c $(pkg-config --cflags --libs warmpool) -o run_submission
 *   ./run_submission python student_123 main.py 'in1' 'expected1' ['in2' 'expected2' …]
 *
 * WARMPOOL_URL and WARMPOOL_TOKEN pick the server (default http://127.0.0.1:8080).
 * Exit status: 0 all tests passed, 1 a test failed, 2 usage, 3 warmpool failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warmpool.h>

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	struct wp_run_result *res = NULL;
	struct wp_run_request *req;
	struct wp_client *c;
	char *source;
	int status = 0;

	if (argc < 6 || (argc - 4) % 2) {
		fprintf(stderr, "usage: %s POOL SESSION SOURCE INPUT EXPECTED [INPUT EXPECTED]…\n", argv[0]);
		return 2;
	}
	if (!(source = slurp(argv[3]))) {
		perror(argv[3]);
		return 2;
	}
	c = wp_client_new(NULL, NULL); /* WARMPOOL_URL, WARMPOOL_TOKEN */
	req = wp_run_request_new(source);
	free(source);
	if (!c || !req) {
		fprintf(stderr, "run_submission: cannot set up the client (bad WARMPOOL_URL?)\n");
		return 3;
	}
	for (int i = 4; i + 1 < argc; i += 2)
		wp_run_request_add_test(req, argv[i], strlen(argv[i]), argv[i + 1], strlen(argv[i + 1]));

	if (wp_session_run(c, argv[1], argv[2], req, &res) < 0) {
		/* one line that names the server and says what went wrong */
		fprintf(stderr, "run_submission: %s\n", wp_error_text(c));
		fprintf(stderr, "  (HTTP status %d, code `%s`)\n", wp_error_status(c), wp_error_code(c));
		status = 3;
	} else {
		for (size_t i = 0; i < wp_run_test_count(res); i++)
			printf("test %zu: %-22s %5lld ms %8lld KB\n", i + 1, wp_run_test_verdict(res, i),
			       wp_run_test_time_ms(res, i), wp_run_test_memory_kb(res, i));
		if (wp_run_compile_status(res) && strcmp(wp_run_compile_status(res), "error") == 0)
			printf("%s", wp_run_compile_stderr(res));
		printf("%s: %d/%d passed\n", wp_run_verdict(res), wp_run_passed(res), wp_run_total(res));
		status = strcmp(wp_run_verdict(res), "accepted") == 0	      ? 0
			 : strcmp(wp_run_verdict(res), "internal_error") == 0 ? 3
									      : 1;
	}
	wp_free(res);
	wp_free(req);
	wp_client_free(c);
	return status;
}
