/* numabind version: the one place the version is written.
 * CMake and pyproject read it from here; nmb_version() reports the library's. */
#ifndef NUMABIND_VERSION_H
#define NUMABIND_VERSION_H

#define NMB_VERSION_MAJOR 0
#define NMB_VERSION_MINOR 1
#define NMB_VERSION_PATCH 0
#define NMB_VERSION_STRING "0.1.0"

/* One number that orders versions: 0xMMmmpp. */
#define NMB_VERSION_ENCODE(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define NMB_VERSION NMB_VERSION_ENCODE(NMB_VERSION_MAJOR, NMB_VERSION_MINOR, NMB_VERSION_PATCH)

#endif /* NUMABIND_VERSION_H */
