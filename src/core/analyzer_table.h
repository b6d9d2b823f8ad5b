/* analyzer_table.h - the analyzer's family table, shared by analyzer.c (matching) and
 * analyzer_table.c (the data). Internal to the core: use analyzer.h elsewhere. */
#ifndef DRV_CORE_ANALYZER_TABLE_H
#define DRV_CORE_ANALYZER_TABLE_H

#include "core/analyzer.h"

#define DRV_FAMILY_PATTERNS_MAX 12

/* One family: its public info and the lower-case substrings of a model id (org prefix
 * removed) that name it. Patterns of 3 bytes or fewer only match as a whole word (no
 * letter right before or after), so "opt" does not match "adopt" or "optimum".
 * Unused pattern slots are NULL. */
typedef struct drv_family_row {
    drv_family_info info;
    const char *patterns[DRV_FAMILY_PATTERNS_MAX];
} drv_family_row;

/* The rows, indexed by family id; row 0 is "unknown" and has no patterns. */
extern const drv_family_row drv_family_table[];
extern const int drv_family_table_count;

#endif
