/* A topology file checked before hwloc reads it: hwloc sizes its CPU and
 * NUMA bitmaps by the largest os_index, so one PU or NUMANode numbered in
 * the billions costs seconds and hundreds of MB in every rank. */
#ifndef CB_TOPO_XML_H
#define CB_TOPO_XML_H

#include <stddef.h>
#include "core/status.h"

#define CB_TOPO_XML_MAX_BYTES (64u << 20)
#define CB_TOPO_MAX_OS_INDEX (1u << 20)   /* far beyond any kernel's CPU or NUMA node count */

/* 0, or -1 with *line and *value of the first PU or NUMANode whose
 * os_index is above CB_TOPO_MAX_OS_INDEX (*value is capped; any length of
 * digits is read). */
int cb_topo_xml_scan(const char *text, size_t len, int *line, unsigned long *value);
/* CB_OK, or CB_EUSAGE (logged) when the file is too large or numbers a PU
 * or NUMA node beyond the bound. */
cb_status cb_topo_xml_check(const char *path);

#endif
