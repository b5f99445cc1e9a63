// The public headers compile as C++ and link from a C++ program.
#include <numabind/numabind.h>

#include <cstdio>

int main()
{
    nmb_bitmap_t set;
    nmb_bitmap_zero(&set);
    if (nmb_bitmap_parse_list(&set, "0-3") != 0 || nmb_bitmap_count(&set) != 4)
        return 1;
    if (nmb_version() != NMB_VERSION)
        return 1;
    nmb_topology_destroy(nullptr);
    std::printf("numabind %s from C++\n", nmb_version_string());
    return 0;
}
