/* files.h — the slot's work dir (/mnt/data) from the host side. Every access
 * is relative to the slot's directory fd, one path component, O_NOFOLLOW:
 * a symlink or hard link planted by the program is never followed or
 * written through (Judge0's CVE-2024-28185/28189 shape). */
#ifndef SANDBOXD_FILES_H
#define SANDBOXD_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "slot.h"

/* 1–255 bytes, no '/', not "." or "..", no NUL or control characters. */
bool files_name_valid(const char *name, size_t len);
/* Replace `name` with a new regular file holding data, owned by the slot's uid. */
int files_write(struct slot *s, const char *name, const void *data, size_t len, struct wp_error *err);
/* files_write's upload form: the file is created here, the bytes written by
 * a child forked into the slot's init cgroup, so that their pages are
 * charged to the slot's memory cgroup (a tmpfs page is charged to the
 * cgroup of the process that first writes it: sandboxd's, else). The
 * cgroup move may wait for an RCU grace period: the child waits, not the
 * loop. Returns the child's pid (reap it with ev_child: exit 0 written,
 * ENOSPC the work dir is full, killed by SIGKILL the slot's memory is full
 * or the slot went, else failed) or -errno with err filled. */
pid_t files_write_charged(struct slot *s, const char *name, const void *data, size_t len, struct wp_error *err);
/* Read a regular file, at most max bytes (-EFBIG past it). *out is malloc'd. */
int files_read(struct slot *s, const char *name, size_t max, char **out, size_t *len, struct wp_error *err);
/* The same, relative to a directory fd inside the work dir. */
int files_write_at(struct slot *s, int dfd, const char *name, const void *data, size_t len, struct wp_error *err);
int files_read_at(struct slot *s, int dfd, const char *name, size_t max, char **out, size_t *len, struct wp_error *err);
/* Remove a directory of the work dir and all it holds, following nothing;
 * at most FILES_REMOVE_MAX entries (the rest goes with the slot). */
void files_remove_tree(struct slot *s, const char *name);
int files_delete(struct slot *s, const char *name, struct wp_error *err);

/* Listings come in pages, so that a work dir of a million names costs each
 * request the same bounded work: at most `limit` entries returned (and
 * stat'ed), at most limit + FILES_SCAN_SLACK directory entries read, and
 * no more than FILES_PAGE_BUDGET_S seconds of reading. */
#define FILES_PAGE_DEFAULT  1000
#define FILES_PAGE_MAX	    5000
#define FILES_SCAN_SLACK    1024
#define FILES_PAGE_BUDGET_S 0.05
#define FILES_REMOVE_MAX    20000

struct files_page {
	json_t *files;	/* owned by the caller: [{"name", "size", "mtime", "type"}] */
	bool more;	/* the directory goes on: ask again with after = next */
	long long next; /* opaque cursor (the directory offset after the last entry read) */
};

/* One page of the work dir in directory order, from the start (after = 0)
 * or from a previous page's `next`. Entries that vanish meanwhile or whose
 * names are not UTF-8 are left out; a page may then be short (even empty)
 * with more set. Each entry of an unchanged directory is listed once. */
int files_list_page(struct slot *s, long long after, size_t limit, struct files_page *out, struct wp_error *err);
/* One entry of the list by name, or NULL (-ENOENT in err) when absent. */
json_t *files_stat(struct slot *s, const char *name, struct wp_error *err);

/* Subdirectories of the work dir (the files API's `dir`): "a/b" relative to
 * /mnt/data, each component a valid name, opened without following any
 * link; made when `create`. An fd the caller closes, or -errno (-ENOENT: no
 * such directory, or a component is a link or not a directory). The _at
 * variants work in such a directory. */
#define FILES_DIR_MAX	1024
#define FILES_DIR_DEPTH 32
int files_open_dir(struct slot *s, const char *path, bool create, struct wp_error *err);
int files_list_page_at(int dfd, long long after, size_t limit, struct files_page *out, struct wp_error *err);
json_t *files_stat_at(int dfd, const char *name, struct wp_error *err);
int files_delete_at(int dfd, const char *name, struct wp_error *err);
pid_t files_write_charged_at(struct slot *s, int dfd, const char *name, const void *data, size_t len,
			     struct wp_error *err);

/* The whole tree below a directory fd, depth first, in one answer: each
 * entry as a page's, with "dir" its directory relative to dfd ("" for
 * dfd's own entries). Subdirectories are opened from their parent's fd,
 * O_NOFOLLOW: a link is never entered (nor listed: type "other"). At most
 * FILES_TREE_MAX entries read, FILES_TREE_DEPTH levels below dfd and
 * FILES_TREE_BUDGET_S seconds: past any of them -E2BIG with why, and no
 * list (a partial one would look whole). Names that are not UTF-8 are left
 * out, with what is below them. */
#define FILES_TREE_MAX	    5000
#define FILES_TREE_DEPTH    32
#define FILES_TREE_BUDGET_S 0.1
int files_list_tree_at(int dfd, json_t **out, struct wp_error *err);

#endif
