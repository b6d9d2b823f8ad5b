/* message_fast.h - the hand-written fast paths of the worker channel's two per-test
 * frames, used by message.c before (instead of) jansson when drv_protocol_fast_paths is
 * set. Internal to the protocol module; not part of protocol.h. */
#ifndef DRV_PROTOCOL_MESSAGE_FAST_H
#define DRV_PROTOCOL_MESSAGE_FAST_H

#include <stddef.h>

#include "protocol/protocol.h"

/* Decodes a "finished" frame of the flat shape or an "assign" frame of the common shape
 * ({"type":"assign","v":1,"tests":[...]} in that order, plain strings) exactly as
 * drv_msg_decode's general path would. Returns 1 with *out filled (owned by the caller),
 * or 0 for anything else, *out untouched: the caller then decodes the general way,
 * which gives the same message for a good frame and the error for a bad one. */
int drv_msg_decode_fast(const char *buf, size_t len, drv_msg *out);

/* Encodes an assign or a finished straight into a buffer: the same bytes
 * json_dumps(JSON_COMPACT) gives for the tree the general encoder builds. Returns the
 * text (owned by the caller; *len its length when len is not NULL), or NULL when m is
 * another type or needs the general encoder (an env entry without '='). */
char *drv_msg_encode_fast(const drv_msg *m, size_t *len);

#endif
