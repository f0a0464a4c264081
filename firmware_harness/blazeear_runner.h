/* Runs every test vector through blazeear_pp and writes the device log (host and M55 alike). */
#ifndef BLAZEEAR_RUNNER_H
#define BLAZEEAR_RUNNER_H

#include <stdint.h>

#include "blazeear_log.h"
#include "blazeear_pp.h"

/* An up-counting tick clock (SysTick on the M55), or NULL for no timing. */
typedef uint32_t (*blazeear_clock_fn)(void);

/* Returns 0 when every vector ran, 1 otherwise. end_kv is appended to the "end" line. */
int blazeear_run_vectors(blazeear_log_t *log, const blazeear_pp_model_t *model,
                         const char *model_name, blazeear_clock_fn clock,
                         const blazeear_log_kv_t *end_kv, int nend);

#endif /* BLAZEEAR_RUNNER_H */
