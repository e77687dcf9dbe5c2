/* checker.c — see checker.h. */
#include "checker.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "files.h"
#include "json.h"

#define MAX_ARTIFACTS	   32
#define MAX_ARTIFACT_BYTES (64u << 20)
#define MAX_SOURCE	   (1u << 20)

struct artifact {
	char *name;
	char *data;
	size_t len;
};

struct checker {
	const struct language *lang;
	char *source;
	size_t source_len;
	struct artifact files[MAX_ARTIFACTS];
	size_t n_files;
	char dir[40]; /* current directory name in the work dir, "" when none */
	char cwd[64]; /* its path inside the slot */
};

static struct language **langs;
static size_t n_langs;

void checker_set_languages(struct language **ls, size_t n)
{
	langs = ls;
	n_langs = n;
}

int checker_parse(const json_t *spec, struct checker **out, struct wp_error *err)
{
	static const char *const keys[] = {"language", "source", NULL};
	const char *lang = NULL, *src = NULL;
	struct checker *c;
	int r;

	if (!json_is_object(spec))
		return wp_error_set(err, EINVAL,
				    "checker: an object {\"language\", \"source\"} is required with "
				    "compare.mode checker");
	if ((r = json_check_keys(spec, keys, err)) < 0 ||
	    (r = json_get_string(spec, "language", true, &lang, err)) < 0 ||
	    (r = json_get_string(spec, "source", true, &src, err)) < 0) {
		wp_error_prefix(err, "checker");
		return r;
	}
	size_t len = json_string_length(json_object_get(spec, "source"));
	if (len > MAX_SOURCE)
		return wp_error_set(err, EINVAL, "checker.source: larger than %u bytes", MAX_SOURCE);
	struct language *l = language_find(langs, n_langs, lang);
	if (!l || !l->available)
		return wp_error_set(err, EINVAL, "checker.language: `%s` is not available on this node", lang);
	if (!(c = calloc(1, sizeof(*c))) || !(c->source = malloc(len + 1))) {
		free(c);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	memcpy(c->source, src, len + 1);
	c->source_len = len;
	c->lang = l;
	*out = c;
	return 0;
}

void checker_free(struct checker *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_files; i++) {
		free(c->files[i].name);
		free(c->files[i].data);
	}
	free(c->source);
	free(c);
}

const struct language *checker_language(const struct checker *c)
{
	return c->lang;
}

/* A directory no program could have guessed, created by us, owned by the slot. */
static int make_dir(struct checker *c, struct slot *s, int *dfd, struct wp_error *err)
{
	unsigned char b[8];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		return wp_error_errno(err, "getrandom");
	snprintf(c->dir, sizeof(c->dir), ".checker-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
		 b[5], b[6], b[7]);
	snprintf(c->cwd, sizeof(c->cwd), "/mnt/data/%s", c->dir);
	if (mkdirat(s->data_fd, c->dir, 0700) < 0) {
		c->dir[0] = '\0';
		return wp_error_errno(err, "mkdir checker dir");
	}
	*dfd = openat(s->data_fd, c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dfd < 0 || fchown(*dfd, s->uid, s->uid) < 0)
		return wp_error_errno(err, "open checker dir");
	return 0;
}

int checker_build_dir(struct checker *c, struct slot *s, const char **cwd, struct wp_error *err)
{
	cleanup_close int dfd = -1;
	int r;

	if ((r = make_dir(c, s, &dfd, err)) < 0 ||
	    (r = files_write_at(s, dfd, c->lang->source, c->source, c->source_len, err)) < 0)
		return r;
	*cwd = c->cwd;
	return 0;
}

int checker_collect(struct checker *c, struct slot *s, struct wp_error *err)
{
	int dfd = openat(s->data_fd, c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	cleanup_dir DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	size_t total = 0;
	struct dirent *de;
	int r = 0;

	if (!d) {
		cleanup_closep(&dfd);
		return wp_error_errno(err, "open checker build dir");
	}
	while ((de = readdir(d)) && r == 0) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (c->n_files == MAX_ARTIFACTS || total + (size_t)st.st_size > MAX_ARTIFACT_BYTES) {
			r = wp_error_set(err, EFBIG, "the checker's build left more than %d files or %u bytes",
					 MAX_ARTIFACTS, MAX_ARTIFACT_BYTES);
			break;
		}
		struct artifact *a = &c->files[c->n_files];
		if (files_read_at(s, dirfd(d), de->d_name, MAX_ARTIFACT_BYTES, &a->data, &a->len, err) < 0) {
			r = -EIO;
			break;
		}
		if (!(a->name = strdup(de->d_name))) {
			free(a->data);
			r = wp_error_set(err, ENOMEM, "out of memory");
			break;
		}
		total += a->len;
		c->n_files++;
	}
	checker_unstage(c, s);
	return r;
}

int checker_stage(struct checker *c, struct slot *s, const char *in, size_t in_len, const char *out, size_t out_len,
		  const char *ans, size_t ans_len, const char **cwd, struct wp_error *err)
{
	cleanup_close int dfd = -1;
	int r;

	if ((r = make_dir(c, s, &dfd, err)) < 0)
		return r;
	for (size_t i = 0; i < c->n_files; i++) {
		if ((r = files_write_at(s, dfd, c->files[i].name, c->files[i].data, c->files[i].len, err)) < 0)
			return r;
		/* compiled artifacts run; sources are read: both fine as 0755 */
		if (fchmodat(dfd, c->files[i].name, 0755, 0) < 0)
			return wp_error_errno(err, "chmod checker file");
	}
	if ((r = files_write_at(s, dfd, "input", in, in_len, err)) < 0 ||
	    (r = files_write_at(s, dfd, "output", out, out_len, err)) < 0 ||
	    (r = files_write_at(s, dfd, "answer", ans, ans_len, err)) < 0)
		return r;
	*cwd = c->cwd;
	return 0;
}

void checker_unstage(struct checker *c, struct slot *s)
{
	if (!c || !c->dir[0])
		return;
	files_remove_tree(s, c->dir);
	c->dir[0] = '\0';
}

enum verdict checker_verdict(const struct run_outcome *o)
{
	if (o->internal_error)
		return VERDICT_INTERNAL_ERROR;
	if (o->exited && o->exit_code == 0)
		return VERDICT_ACCEPTED;
	if (o->exited && (o->exit_code == 1 || o->exit_code == 2))
		return VERDICT_WRONG_ANSWER;
	return VERDICT_INTERNAL_ERROR; /* the checker crashed, timed out or said "fail" */
}
