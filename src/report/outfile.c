/* See outfile.h: the temporary file of a -J or --csv writer and its rename. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static char *tmp_name_for(const char *path)
{
    size_t cap = strlen(path) + 32;
    char *name = malloc(cap);
    if (name)
        snprintf(name, cap, "%s.tmp.%ld", path, (long)getpid());
    return name;
}

static cb_status create_tmp(struct cb_outfile *o)
{
    struct stat st;
    if (stat(o->path, &st) == 0 && S_ISDIR(st.st_mode)) {   /* rename would fail only at the end */
        cannot_write(o, EISDIR);
        return CB_EUSAGE;
    }
    int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        cannot_write(o, errno);
        return CB_EUSAGE;
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        cannot_write(o, errno);
        close(fd);
        unlink(o->tmp_path);
        return CB_ESYS;
    }
    return CB_OK;
}

cb_status cb_outfile_open(const char *path, const char *what, const char *flag,
                          struct cb_outfile *out)
{
    *out = (struct cb_outfile){.path = strdup(path), .tmp_path = tmp_name_for(path),
                               .what = what, .flag = flag};
    if (!out->path || !out->tmp_path) {
        cb_log_error("out of memory opening %s file %s", what, path);
        free_names(out);
        return CB_ENOMEM;
    }
    cb_status st = create_tmp(out);
    if (st != CB_OK)
        free_names(out);
    return st;
}

void cb_outfile_abort(struct cb_outfile *o)
{
    fclose(o->f);
    unlink(o->tmp_path);
    free_names(o);
}

/* Flush to disk, then rename: the file appears complete or not at all. */
cb_status cb_outfile_commit(struct cb_outfile *o)
{
    errno = 0;
    int failed = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int err = errno ? errno : EIO;   /* an earlier failed write may have left no errno */
    if (fclose(o->f) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (!failed && rename(o->tmp_path, o->path) != 0) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        cannot_write(o, err);
        unlink(o->tmp_path);
    }
    free_names(o);
    return failed ? CB_ESYS : CB_OK;
}
