/* files.c — see files.h. */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"

bool files_name_valid(const char *name, size_t len)
{
	if (len < 1 || len > 255 || strlen(name) != len)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* A subdirectory of the work dir, one component at a time from its fd,
 * never following a link (O_NOFOLLOW on each): whatever a program in the
 * slot made of the path (a symlink to /, to /proc/1/root), the fd returned
 * is a directory inside /mnt/data. With `create`, missing directories are
 * made (the slot's uid owns them). */
int files_open_dir(struct slot *s, const char *path, bool create, struct wp_error *err)
{
	cleanup_free char *copy = strdup(path);
	cleanup_close int cur = -1;
	char *save = NULL, *comp;
	int depth = 0;

	if (!copy)
		return wp_error_set(err, ENOMEM, "out of memory");
	if (strlen(path) > FILES_DIR_MAX)
		return wp_error_set(err, EINVAL, "dir: at most %d bytes", FILES_DIR_MAX);
	if ((cur = openat(s->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return wp_error_errno(err, "open work dir");
	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		int fd;
		if (!files_name_valid(comp, strlen(comp)) || ++depth > FILES_DIR_DEPTH)
			return wp_error_set(err, EINVAL,
					    "dir: names of 1 to 255 bytes (not `.` or `..`, no control character), "
					    "at most %d deep",
					    FILES_DIR_DEPTH);
		fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
				return errno == ENOSPC ? wp_error_set(err, ENOSPC, "the slot's work dir is full")
						       : wp_error_errno(err, "make directory `%s`", comp);
			fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && fchown(fd, s->uid, s->uid) < 0) {
				close(fd);
				return wp_error_errno(err, "chown directory `%s`", comp);
			}
		}
		if (fd < 0)
			return errno == ENOENT || errno == ELOOP || errno == ENOTDIR
				   ? wp_error_set(err, ENOENT, "no directory `%s` in the work dir", path)
				   : wp_error_errno(err, "open directory `%s`", comp);
		close(cur);
		cur = fd;
	}
	return steal_fd(&cur);
}

int files_write(struct slot *s, const char *name, const void *data, size_t len, struct wp_error *err)
{
	return files_write_at(s, s->data_fd, name, data, len, err);
}

/* Create `name` afresh (see below) and return its fd, or -errno. */
static int create_at(struct slot *s, int dfd, const char *name, struct wp_error *err)
{
	cleanup_close int fd = -1;

	/* Whatever the program left under this name (a symlink to /etc/passwd,
	 * a hard link, a FIFO) is unlinked, never opened; O_EXCL|O_NOFOLLOW
	 * then guarantees we write a file we created. A name it re-creates in
	 * between makes us try again, a few times. */
	for (int tries = 0; fd < 0; tries++) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return wp_error_errno(err, "replace `%s`", name);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 && (errno != EEXIST || tries == 5))
			return wp_error_errno(err, "create `%s`", name);
	}
	if (fchown(fd, s->uid, s->uid) < 0)
		return wp_error_errno(err, "chown `%s`", name);
	return steal_fd(&fd);
}

int files_write_at(struct slot *s, int dfd, const char *name, const void *data, size_t len, struct wp_error *err)
{
	cleanup_close int fd = create_at(s, dfd, name, err);
	const char *p = data;

	if (fd < 0)
		return fd;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ENOSPC ? wp_error_set(err, ENOSPC, "`%s`: the slot's work dir is full", name)
					       : wp_error_errno(err, "write `%s`", name);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

pid_t files_write_charged(struct slot *s, const char *name, const void *data, size_t len, struct wp_error *err)
{
	return files_write_charged_at(s, s->data_fd, name, data, len, err);
}

pid_t files_write_charged_at(struct slot *s, int dfd, const char *name, const void *data, size_t len,
			     struct wp_error *err)
{
	int procs[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, r;
	cleanup_close int fd = -1;
	pid_t pid;

	if ((r = cgroup_open_join(s->cg_init, procs, err)) < 0)
		return r;
	fd = create_at(s, dfd, name, err);
	pid = fd < 0 ? -1 : fork();
	if (pid == 0) {
		const char *p = data;
		for (int i = 0; i < 8 && procs[i] >= 0; i++)
			if (write(procs[i], "0", 1) != 1)
				_exit(1);
		while (len > 0) {
			ssize_t n = write(fd, p, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				_exit(errno == ENOSPC ? ENOSPC : 1);
			p += n;
			len -= (size_t)n;
		}
		_exit(0);
	}
	if (fd >= 0 && pid < 0)
		r = wp_error_errno(err, "fork to write `%s`", name);
	else
		r = fd < 0 ? fd : pid;
	for (int i = 0; i < 8 && procs[i] >= 0; i++)
		close(procs[i]);
	return r;
}

int files_read(struct slot *s, const char *name, size_t max, char **out, size_t *len_out, struct wp_error *err)
{
	return files_read_at(s, s->data_fd, name, max, out, len_out, err);
}

int files_read_at(struct slot *s, int dfd, const char *name, size_t max, char **out, size_t *len_out,
		  struct wp_error *err)
{
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	cleanup_free char *buf = NULL;
	struct stat st;
	size_t len = 0;

	if (fd < 0)
		return errno == ELOOP ? wp_error_set(err, ENOENT, "`%s` is a symlink", name)
				      : wp_error_errno(err, "open `%s`", name);
	if (fstat(fd, &st) < 0)
		return wp_error_errno(err, "stat `%s`", name);
	if (!S_ISREG(st.st_mode))
		return wp_error_set(err, ENOENT, "`%s` is not a regular file", name);
	if ((uint64_t)st.st_size > max)
		return wp_error_set(err, EFBIG, "`%s` is larger than %zu bytes", name, max);
	if (!(buf = malloc((size_t)st.st_size + 1)))
		return wp_error_set(err, ENOMEM, "out of memory");
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return wp_error_errno(err, "read `%s`", name);
		if (n == 0)
			break; /* it shrank meanwhile */
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = steal_pointer(&buf);
	*len_out = len;
	return 0;
}

int files_delete(struct slot *s, const char *name, struct wp_error *err)
{
	return files_delete_at(s->data_fd, name, err);
}

int files_delete_at(int dfd, const char *name, struct wp_error *err)
{
	if (unlinkat(dfd, name, 0) == 0)
		return 0;
	if (errno == EISDIR && unlinkat(dfd, name, AT_REMOVEDIR) == 0)
		return 0;
	return wp_error_errno(err, "delete `%s`", name);
}

static json_t *entry_json(int dfd, const char *name)
{
	struct stat st;
	json_t *jname;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL; /* gone meanwhile */
	/* names the program made may not be UTF-8: skip what JSON cannot carry */
	if (!(jname = json_string(name)))
		return NULL;
	const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : "other";
	return json_pack("{s:o, s:I, s:f, s:s}", "name", jname, "size", (json_int_t)st.st_size, "mtime",
			 st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9, "type", type);
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Directory order, resumed with seekdir() at the offset the kernel gave the
 * last entry consumed (d_off: where the next one starts). On tmpfs (the
 * work dir) that offset is stable and a seek is a tree look-up, so a page
 * costs the same at the start or at the millionth entry of the directory;
 * only the entries returned are stat'ed. */
int files_list_page(struct slot *s, long long after, size_t limit, struct files_page *out, struct wp_error *err)
{
	return files_list_page_at(s->data_fd, after, limit, out, err);
}

int files_list_page_at(int dfd, long long after, size_t limit, struct files_page *out, struct wp_error *err)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_dir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	cleanup_json json_t *arr = json_array();
	size_t scanned = 0, max_scan = limit + FILES_SCAN_SLACK;
	double t0 = mono_now();
	long long pos = after;
	struct dirent *de;

	*out = (struct files_page){0};
	if (!d) {
		cleanup_closep(&fd);
		return wp_error_errno(err, "list work dir");
	}
	if (!arr)
		return wp_error_set(err, ENOMEM, "out of memory");
	if (after > 0)
		seekdir(d, (long)after);
	for (;;) {
		bool full = json_array_size(arr) >= limit || scanned >= max_scan ||
			    (scanned % 256 == 255 && mono_now() - t0 > FILES_PAGE_BUDGET_S);
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				return wp_error_errno(err, "read work dir");
			break; /* the end: no next page */
		}
		if (full) { /* one more exists: the next page starts after pos */
			out->more = true;
			break;
		}
		scanned++;
		pos = (long long)de->d_off;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		json_t *e = entry_json(dirfd(d), de->d_name);
		if (e)
			json_array_append_new(arr, e);
	}
	out->next = pos;
	out->files = steal_pointer(&arr);
	return 0;
}

struct tree_walk {
	json_t *files;
	size_t read;
	double t0;
	char dir[FILES_TREE_DEPTH * 256 + 1]; /* the directory being read, relative to the top */
};

static int tree_dir(struct tree_walk *w, int dfd, int depth, struct wp_error *err)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_dir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	size_t dlen = strlen(w->dir);
	struct dirent *de;

	if (!d) {
		cleanup_closep(&fd);
		return wp_error_errno(err, "list `%s`", w->dir);
	}
	for (;;) {
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				return wp_error_errno(err, "read `%s`", w->dir);
			return 0;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (++w->read > FILES_TREE_MAX || (w->read % 256 == 0 && mono_now() - w->t0 > FILES_TREE_BUDGET_S))
			return wp_error_set(err, E2BIG,
					    "a recursive list holds at most %d entries (and takes at most %g s): this "
					    "directory holds more; list its subdirectories one at a time (path), or "
					    "list it without recursive (in pages)",
					    FILES_TREE_MAX, FILES_TREE_BUDGET_S);
		json_t *e = entry_json(dirfd(d), de->d_name);
		if (!e)
			continue; /* gone, or a name JSON cannot carry: nor what is below it */
		json_object_set_new(e, "dir", json_string(w->dir));
		bool is_dir = strcmp(json_string_value(json_object_get(e, "type")), "dir") == 0;
		json_array_append_new(w->files, e);
		if (!is_dir)
			continue;
		if (depth + 1 > FILES_TREE_DEPTH)
			return wp_error_set(err, E2BIG,
					    "a recursive list goes at most %d directories deep: `%s` goes deeper; "
					    "list that subdirectory (path) instead",
					    FILES_TREE_DEPTH, w->dir);
		cleanup_close int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue; /* replaced by a link or a file meanwhile: not entered */
		snprintf(w->dir + dlen, sizeof(w->dir) - dlen, "%s%s", dlen ? "/" : "", de->d_name);
		int r = tree_dir(w, sub, depth + 1, err);
		w->dir[dlen] = '\0';
		if (r < 0)
			return r;
	}
}

int files_list_tree_at(int dfd, json_t **out, struct wp_error *err)
{
	struct tree_walk *w = calloc(1, sizeof(*w));
	int r;

	*out = NULL;
	if (!w || !(w->files = json_array())) {
		free(w);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	w->t0 = mono_now();
	r = tree_dir(w, dfd, 0, err);
	if (r < 0)
		json_decref(w->files);
	else
		*out = w->files;
	free(w);
	return r;
}

json_t *files_stat(struct slot *s, const char *name, struct wp_error *err)
{
	return files_stat_at(s->data_fd, name, err);
}

json_t *files_stat_at(int dfd, const char *name, struct wp_error *err)
{
	json_t *e = entry_json(dfd, name);
	if (!e)
		wp_error_set(err, ENOENT, "no file `%s` in the work dir", name);
	return e;
}

/* Depth-first, never following a link: what a program made in the tree
 * (links, FIFOs, deep nests) is unlinked, not entered. At most *budget
 * entries: a tree of a million names is not unlinked on the event loop; what
 * is left goes with the slot's work dir (a tmpfs, dropped whole). */
static void remove_tree_at(int pfd, const char *name, int depth, size_t *budget)
{
	int fd = depth < 16 ? openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
	cleanup_dir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		cleanup_closep(&fd);
		unlinkat(pfd, name, 0);
		return;
	}
	while (*budget > 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(*budget)--;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR)
			remove_tree_at(dirfd(d), de->d_name, depth + 1, budget);
	}
	unlinkat(pfd, name, AT_REMOVEDIR);
}

void files_remove_tree(struct slot *s, const char *name)
{
	size_t budget = FILES_REMOVE_MAX;
	remove_tree_at(s->data_fd, name, 0, &budget);
}
