/*
 * A minimal stand-in for ST Edge AI Core's stai.h (the `--c-api st-ai` runtime API), just enough
 * to compile and run board/app_main.c on the host in the test suite. NOT ST's header: on the
 * board, use the stai.h that comes with ST Edge AI Core / X-CUBE-AI.
 */
#ifndef STAI_H
#define STAI_H

#include <stdint.h>

typedef int32_t stai_size;
typedef uint8_t *stai_ptr;
typedef uint8_t stai_network;

typedef enum {
    STAI_SUCCESS = 0,
    STAI_ERROR_GENERIC = 1
} stai_return_code;

typedef enum {
    STAI_MODE_SYNC = 0,
    STAI_MODE_ASYNC = 1
} stai_run_mode;

typedef struct {
    stai_size size_bytes;
} stai_tensor;

#define STAI_STUB_MAX_IO 8

typedef struct {
    stai_size n_inputs;
    stai_size n_outputs;
    stai_tensor inputs[STAI_STUB_MAX_IO];
    stai_tensor outputs[STAI_STUB_MAX_IO];
} stai_network_info;

stai_return_code stai_runtime_init(void);
stai_return_code stai_network_init(stai_network *network);
stai_return_code stai_network_get_info(stai_network *network, stai_network_info *info);
stai_return_code stai_network_set_inputs(stai_network *network, const stai_ptr *inputs,
                                         const stai_size n_inputs);
stai_return_code stai_network_get_outputs(stai_network *network, stai_ptr *outputs,
                                          stai_size *n_outputs);
stai_return_code stai_network_run(stai_network *network, const stai_run_mode mode);

#endif
