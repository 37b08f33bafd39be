/* Ranks grouped by a name they share (a machine, a memory domain): each
 * group as an index, numbered 0, 1, ... in order of its first rank. Sorting
 * the names costs O(n log n) however many groups there are; comparing each
 * rank with every group seen so far would cost n x groups (32k ranks on 4k
 * hosts: 10^8 string compares). Pure (tests/unit/test_pairs_rails.c). */
#ifndef CB_GROUPS_H
#define CB_GROUPS_H

#include <stddef.h>
#include "status.h"

/* names: n NUL-terminated strings, `stride` bytes apart. group[r] = the
 * group of rank r (ranks with equal names share one); *ngroups = how many.
 * CB_ENOMEM (logged). */
cb_status cb_groups_by_name(int n, const char *names, size_t stride, int *group, int *ngroups);

#endif
