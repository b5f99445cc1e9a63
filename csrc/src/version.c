/* Runtime version getters: what the loaded library is, whatever header the
 * caller compiled against. */
#include "internal.h"

unsigned nmb_version(void)
{
    return NMB_VERSION;
}

const char *nmb_version_string(void)
{
    return NMB_VERSION_STRING;
}
