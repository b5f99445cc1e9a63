/* CUDA_VISIBLE_DEVICES against a machine the input describes: the first
 * byte gives the number of GPUs (0-15), the next 2 bytes which of them have
 * a known UUID (NVML present), the rest is the variable's value. Every
 * answer is a list of distinct GPUs of the machine, and every refusal names
 * the entry. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 65536)
        return 0;
    int num = data[0] % 16;
    unsigned known = (unsigned)data[1] | (unsigned)data[2] << 8;
    char *text = fuzz_cstr(data + 3, size - 3);
    static const char *const pool[16] = {
        "GPU-0a1b2c3d-1111-2222-3333-444455556666", "GPU-0a1b2c3d-1111-2222-3333-444455556667",
        "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff", "GPU-12345678-0000-0000-0000-000000000000",
        "GPU-12345679-0000-0000-0000-000000000000", "GPU-deadbeef-0000-0000-0000-000000000001",
        "GPU-deadbeef-0000-0000-0000-000000000002", "GPU-c0ffee00-1234-5678-9abc-def012345678",
        "GPU-a", "GPU-ab", "GPU-abc", "GPU-", "GPU-00000000-0000-0000-0000-000000000000",
        "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff", "GPU-1", "GPU-10",
    };
    const char *uuids[16];
    for (int i = 0; i < 16; i++)
        uuids[i] = (known >> i & 1) ? pool[i] : NULL;
    int order[16];
    for (int i = 0; i < 16; i++)
        order[i] = -7;
    nmb__clear_error();
    int n = nmb__parse_cuda_visible(text, uuids, num, order);
    if (n < 0) {
        FUZZ_ASSERT(n == -EINVAL);
        const char *e = nmb_last_error();
        FUZZ_ASSERT(strncmp(e, "CUDA_VISIBLE_DEVICES", 20) == 0);
        FUZZ_ASSERT(strlen(e) < 1024);
    } else {
        FUZZ_ASSERT(n <= num);
        for (int i = 0; i < n; i++) {
            FUZZ_ASSERT(order[i] >= 0 && order[i] < num);
            for (int j = 0; j < i; j++)
                FUZZ_ASSERT(order[i] != order[j]);
        }
        for (int i = n; i < 16; i++)
            FUZZ_ASSERT(order[i] == -7); /* nothing written past the answer */
    }
    free(text);
    return 0;
}
