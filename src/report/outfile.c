/* See outfile.h: checked target, unguessable temporary file, fsync and rename. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_TRIES 16   /* fresh random names after EEXIST before giving up */

static void cannot_write(const struct cb_outfile *o, int err)
{
    cb_log_error("cannot write %s file %s: %s; pick a writable path with %s", o->what, o->path,
                 strerror(err), o->flag);
}

static void free_names(struct cb_outfile *o)
{
    free(o->path);
    free(o->tmp_path);
    o->path = o->tmp_path = NULL;
    o->f = NULL;
}

/* What a file type is, for the message refusing it. */
static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "not a regular file";
}

/* The target may be missing or a regular file; anything else would be
 * replaced by the rename, so it is refused with what it is. */
static cb_status check_target(const struct cb_outfile *o)
{
    struct stat st;
    size_t len = strlen(o->path);
    if (len == 0 || o->path[len - 1] == '/') {
        cb_log_error("%s file '%s' names a folder, not a file: give a file name with %s", o->what, o->path,
                     o->flag);
        return CB_EUSAGE;
    }
    if (lstat(o->path, &st) != 0 || S_ISREG(st.st_mode))
        return CB_OK;   /* missing (or unreadable: open says why) */
    char to[256] = "";
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(o->path, to, sizeof to - 1);
        to[n > 0 ? n : 0] = '\0';
    }
    cb_log_error("%s file %s is %s%s%s%s: collbench writes a new file and renames it over the path, which "
                 "would replace it; give %s the path of a regular file (or of one to create)",
                 o->what, o->path, kind_of(st.st_mode), to[0] ? " (to " : "", to, to[0] ? ")" : "", o->flag);
    return CB_EUSAGE;
}

static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* "<path>.tmp.<13 random characters>": 64 bits from the kernel's generator. */
static char *random_tmp_name(const char *path)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return NULL;
    unsigned long long bits = 0;
    for (size_t i = 0; i < sizeof r; i++)
        bits = bits << 8 | r[i];
    char suffix[14];
    for (int i = 0; i < 13; i++, bits >>= 5)
        suffix[i] = alphabet[bits & 31];
    suffix[13] = '\0';
    size_t cap = strlen(path) + sizeof ".tmp." + sizeof suffix;
    char *name = malloc(cap);
    if (name)
        snprintf(name, cap, "%s.tmp.%s", path, suffix);
    return name;
}

/* An unnamed file in the target's folder; -1 (errno set) when the
 * filesystem cannot (then a named one is made) or /proc, needed to give it a
 * name at commit, is missing. */
static int open_unnamed(const char *path)
{
    if (access("/proc/self/fd", X_OK) != 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
    char *dir = folder_of(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    int err = errno;
    free(dir);
    errno = err;
    return fd;
}

/* A fresh "<path>.tmp.<random>": never an existing file, never through a link. */
static int open_named(struct cb_outfile *o)
{
    for (int i = 0; i < NAME_TRIES; i++) {
        free(o->tmp_path);
        if (!(o->tmp_path = random_tmp_name(o->path))) {
            errno = ENOMEM;
            return -1;
        }
        int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;   /* errno is EEXIST */
}

/* The unnamed file cannot be opened in these cases only; then a name is used. */
static int lacks_tmpfile(int err)
{
    return err == EOPNOTSUPP || err == EISDIR || err == EINVAL;
}

static cb_status create_tmp(struct cb_outfile *o, int allow_unnamed)
{
    int fd = allow_unnamed ? open_unnamed(o->path) : -1;
    o->unnamed = fd >= 0;
    if (fd < 0 && (!allow_unnamed || lacks_tmpfile(errno)))
        fd = open_named(o);
    if (fd < 0) {
        cannot_write(o, errno);
        return errno == ENOMEM ? CB_ENOMEM : CB_EUSAGE;
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        cannot_write(o, errno);
        close(fd);
        if (o->tmp_path)
            unlink(o->tmp_path);
        return CB_ESYS;
    }
    return CB_OK;
}

static cb_status open_file(const char *path, const char *what, const char *flag, int allow_unnamed,
                           struct cb_outfile *out)
{
    *out = (struct cb_outfile){.path = strdup(path), .what = what, .flag = flag};
    if (!out->path) {
        cb_log_error("out of memory opening %s file %s", what, path);
        return CB_ENOMEM;
    }
    cb_status st = check_target(out);
    if (st == CB_OK)
        st = create_tmp(out, allow_unnamed);
    if (st != CB_OK)
        free_names(out);
    return st;
}

cb_status cb_outfile_open(const char *path, const char *what, const char *flag, struct cb_outfile *out)
{
    return open_file(path, what, flag, 1, out);
}

cb_status cb_outfile_open_named(const char *path, const char *what, const char *flag, struct cb_outfile *out)
{
    return open_file(path, what, flag, 0, out);
}

cb_status cb_outfile_check(const char *path, const char *what, const char *flag)
{
    struct cb_outfile o;
    cb_status st = cb_outfile_open(path, what, flag, &o);
    if (st == CB_OK)
        cb_outfile_abort(&o);
    return st;
}

void cb_outfile_abort(struct cb_outfile *o)
{
    fclose(o->f);
    if (o->tmp_path)
        unlink(o->tmp_path);
    free_names(o);
}

/* Give the unnamed file a fresh random name beside the target: linkat
 * fails rather than follow or replace anything already there. */
static int link_unnamed(struct cb_outfile *o)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(o->f));
    for (int i = 0; i < NAME_TRIES; i++) {
        free(o->tmp_path);
        if (!(o->tmp_path = random_tmp_name(o->path))) {
            errno = ENOMEM;
            return -1;
        }
        if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp_path, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int err = errno;
    free(o->tmp_path);
    o->tmp_path = NULL;
    errno = err;
    return -1;
}

/* The rename is durable once the folder is on disk too. A folder we may
 * write but not read cannot be opened to sync: the file is in place, so
 * that is no failure. */
static int sync_folder(const char *path)
{
    char *dir = folder_of(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    free(dir);
    if (fd < 0)
        return 0;
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc == 0 || err == EINVAL ? 0 : -1;   /* EINVAL: the filesystem has nothing to sync */
}

/* Flush and fsync; then name, re-check the target and rename. 0 or an errno. */
static int write_out(struct cb_outfile *o)
{
    errno = 0;
    if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0)
        return errno ? errno : EIO;   /* an earlier failed write may have left no errno */
    if (o->unnamed && link_unnamed(o) != 0)
        return errno;
    if (check_target(o) != CB_OK)   /* replaced by something else during the run: logged */
        return -1;
    if (rename(o->tmp_path, o->path) != 0)
        return errno;
    free(o->tmp_path);   /* renamed: nothing to remove any more */
    o->tmp_path = NULL;
    return sync_folder(o->path) == 0 ? 0 : errno;
}

cb_status cb_outfile_commit(struct cb_outfile *o)
{
    int err = write_out(o);
    if (fclose(o->f) != 0 && err == 0)
        err = errno;
    if (err > 0)
        cannot_write(o, err);
    if (err != 0 && o->tmp_path)
        unlink(o->tmp_path);
    free_names(o);
    return err ? CB_ESYS : CB_OK;
}
