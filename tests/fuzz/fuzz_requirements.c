/* fuzz_requirements - libFuzzer target: tag lists and version strings as a user or a
 * worker's probe would send them. Parsers must accept or refuse with a message, never
 * crash; a refused tag list leaves the set unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/requirements.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    drv_tag_table *t = drv_tag_table_new();
    drv_tagset set, before;
    drv_tagset_clear(&set);
    drv_tagset_add(&set, DRV_TAG_CUDA);
    before = set;
    drv_error err;
    if (drv_tagset_parse(t, s, &set, &err) < 0 && !drv_tagset_equal(&set, &before))
        abort();
    char buf[256];
    drv_tagset_format(t, &set, buf, sizeof buf);
    uint32_t v;
    (void)drv_version_parse(s, &v, &err);
    (void)drv_cuda_cc_parse(s, &v, &err);
    drv_tag_table_free(t);
    free(s);
    return 0;
}
