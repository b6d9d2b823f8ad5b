/* task_fast.h - the hand-written fast path of a submission's JSON line, used by
 * task_json.c before (instead of) jansson when drv_protocol_fast_paths is set. Internal
 * to the protocol module; not part of protocol.h. */
#ifndef DRV_PROTOCOL_TASK_FAST_H
#define DRV_PROTOCOL_TASK_FAST_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/protocol.h"

/* The fast path of a JSON line (flat_json.h says why): a test object with only name,
 * argv and scalar fields (no command, env, requirements, family or labels) in plain
 * strings, read exactly as task_json.c's parse_task reads it. Returns true with t
 * filled, or false with t empty (drv_task_clear): the general path then reads the line
 * and words any error. */
bool drv_task_decode_fast(const char *buf, size_t len, drv_task *t);

#endif
