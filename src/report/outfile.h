/* The one writer of every file collbench writes (-J, --csv, pairs -J,
 * tune -o): the file appears whole or not at all, and nothing but a regular
 * file at the named path is ever replaced.
 *
 * - open refuses (CB_EUSAGE, logged) a target that exists and is not a
 *   regular file (directory, device node, FIFO, socket, symbolic link): the
 *   rename at the end would replace it. Callers open before a run, so a bad
 *   path fails before anything is measured.
 * - The data goes to an unnamed file in the target's folder (O_TMPFILE), so a
 *   process killed while writing leaves nothing. On filesystems without
 *   O_TMPFILE it goes to "<path>.tmp.<random>", created with
 *   O_EXCL|O_NOFOLLOW: a name nobody can guess or plant a link at.
 * - commit flushes and fsyncs, names the file "<path>.tmp.<random>" (unnamed
 *   case), renames it over the path and fsyncs the folder. Any failed write,
 *   fsync, link or rename (a full disk) returns CB_ESYS, logged, and removes
 *   the temporary file. */
#ifndef CB_OUTFILE_H
#define CB_OUTFILE_H

#include <stdio.h>
#include "core/status.h"

struct cb_outfile {
    char *path;       /* the target */
    char *tmp_path;   /* the temporary name; NULL while the file is unnamed */
    FILE *f;
    int unnamed;      /* O_TMPFILE: linked under tmp_path only at commit */
    const char *what; /* "JSON", "CSV", "tune", for messages */
    const char *flag; /* the option that names the file: "-J", "--csv", "-o" */
};

/* Check the target and create the temporary file: CB_EUSAGE (bad target,
 * folder missing or not writable), CB_ENOMEM or CB_ESYS, logged; nothing is
 * left to release on failure. `what` and `flag` must outlive the file
 * (string literals). */
cb_status cb_outfile_open(const char *path, const char *what, const char *flag, struct cb_outfile *out);
/* The same, always with a named temporary file (filesystems without
 * O_TMPFILE take this path; tests use it to cover it). */
cb_status cb_outfile_open_named(const char *path, const char *what, const char *flag, struct cb_outfile *out);
/* Open and abort: fails, logged, exactly when open would (before a run). */
cb_status cb_outfile_check(const char *path, const char *what, const char *flag);
/* Flush to disk, then rename over the path; on failure (logged, CB_ESYS)
 * the temporary file is removed. Releases the outfile either way. */
cb_status cb_outfile_commit(struct cb_outfile *o);
/* Close and remove the temporary file, and release the outfile. */
void cb_outfile_abort(struct cb_outfile *o);

#endif
