/* Ranks grouped by name (groups.h). */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

struct named {
    const char *name;
    int rank;
};

static int by_name_then_rank(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->rank > y->rank) - (x->rank < y->rank);
}

cb_status cb_groups_by_name(int n, const char *names, size_t stride, int *group, int *ngroups)
{
    struct named *sorted = malloc(sizeof *sorted * (size_t)(n > 0 ? n : 1));
    *ngroups = 0;
    if (!sorted) {
        cb_log_error("out of memory grouping %d ranks by host", n);
        return CB_ENOMEM;
    }
    for (int r = 0; r < n; r++)
        sorted[r] = (struct named){names + (size_t)r * stride, r};
    qsort(sorted, (size_t)n, sizeof *sorted, by_name_then_rank);
    /* group[r] = the first rank of r's name (the head of its run in the sort) */
    for (int i = 0; i < n; i++) {
        int same = i > 0 && strcmp(sorted[i].name, sorted[i - 1].name) == 0;
        group[sorted[i].rank] = same ? group[sorted[i - 1].rank] : sorted[i].rank;
    }
    /* then heads numbered in rank order: a head's number is set before its later ranks read it */
    for (int r = 0; r < n; r++)
        group[r] = group[r] == r ? (*ngroups)++ : group[group[r]];
    free(sorted);
    return CB_OK;
}
