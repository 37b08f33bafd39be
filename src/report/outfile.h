/* An output file written whole or not at all, shared by the JSON (-J) and
 * CSV (--csv) writers: created as "<path>.tmp.<pid>" at open and renamed over
 * <path> only at commit, so readers never see a partial file. */
#ifndef CB_OUTFILE_H
#define CB_OUTFILE_H

#include <stdio.h>
#include "core/status.h"

struct cb_outfile {
    char *path, *tmp_path;
    FILE *f;
    const char *what;   /* "JSON" or "CSV", for messages */
    const char *flag;   /* the option that names the file: "-J" or "--csv" */
};

/* Create the temporary file beside `path` (refusing a directory early, so a
 * path that cannot be written fails before the run): CB_EUSAGE, CB_ENOMEM or
 * CB_ESYS, logged; nothing is left to release on failure. `what` and `flag`
 * must outlive the file (string literals). */
cb_status cb_outfile_open(const char *path, const char *what, const char *flag,
                          struct cb_outfile *out);
/* Flush to disk, then rename over the path; on failure (logged, CB_ESYS) the
 * temporary file is removed. Releases the outfile either way. */
cb_status cb_outfile_commit(struct cb_outfile *o);
/* Close and remove the temporary file, and release the outfile. */
void cb_outfile_abort(struct cb_outfile *o);

#endif
