/* libFuzzer harness: the os_index bound of a topology file, before hwloc.
 * Any bytes: the scan ends, and a refusal names a line inside the text. */
#include <stdint.h>
#include <stdlib.h>

#include "topo/topo_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int line = 0;
    unsigned long value = 0;
    if (cb_topo_xml_scan((const char *)data, size, &line, &value) != 0) {
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (line < 1 || (size_t)line > lines || value <= CB_TOPO_MAX_OS_INDEX)
            abort();
    }
    return 0;
}
