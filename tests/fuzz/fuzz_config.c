/* fuzz_config - libFuzzer target: the balancer config parser on arbitrary bytes.
 * Any input must either parse or give an error message, never crash, leak or read out
 * of bounds; on error the config is left at the defaults. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_balancer_config cfg, def;
    drv_error err;
    drv_balancer_config_default(&def);
    if (drv_balancer_config_parse((const char *)data, size, &cfg, &err) < 0) {
        if (memcmp(&cfg, &def, sizeof cfg) != 0 || err.msg[0] == 0)
            abort();
        if (strnlen(err.msg, sizeof err.msg) >= sizeof err.msg)
            abort();
    }
    return 0;
}
