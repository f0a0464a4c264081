/*
 * Host stand-in for the stai runtime and the board hooks: "runs the network" by handing out the
 * int8 outputs of the harness test vectors, one vector per camera frame, and writes the device
 * log to stdout. Lets the test suite compile and run board/app_main.c without ST's runtime.
 */
#include <stdio.h>

#include "blazeear_model.h"
#include "blazeear_vectors.h"
#include "stai.h"

static int frame = -1;

int board_init(void)
{
    frame = -1;
    return 0;
}

int board_next_frame(stai_ptr *input, blazeear_pp_letterbox_t *lb, const char **name)
{
    static uint8_t dummy_input[128 * 128 * 3];
    frame++;
    if (frame >= blazeear_num_vectors)
        return 0;
    *input = dummy_input;
    *name = blazeear_vectors[frame].name;
    if (blazeear_vectors[frame].has_letterbox)
        *lb = blazeear_vectors[frame].letterbox;
    else
        lb->width = lb->height = lb->new_w = lb->new_h = lb->pad_x = lb->pad_y = lb->size = 0;
    return 1;
}

void board_outputs_ready(stai_ptr *outputs, const int *size_bytes, int n)
{
    (void)outputs;
    (void)size_bytes;
    (void)n;
}

void board_log_write(void *user, const char *text, int len)
{
    (void)user;
    fwrite(text, 1, (size_t)len, stdout);
}

uint32_t board_cycles(void)
{
    return 0;
}

stai_return_code stai_runtime_init(void)
{
    return STAI_SUCCESS;
}

stai_return_code stai_network_init(stai_network *network)
{
    return network ? STAI_SUCCESS : STAI_ERROR_GENERIC;
}

stai_return_code stai_network_get_info(stai_network *network, stai_network_info *info)
{
    int i;
    (void)network;
    info->n_inputs = 1;
    info->inputs[0].size_bytes = 128 * 128 * 3;
    info->n_outputs = BLAZEEAR_NUM_OUTPUTS;
    for (i = 0; i < BLAZEEAR_NUM_OUTPUTS; i++) {
        const blazeear_pp_tensor_t *t = &blazeear_model_tensors[i];
        info->outputs[i].size_bytes =
            t->anchor_count * (t->kind == BLAZEEAR_PP_REGRESSORS ? BLAZEEAR_PP_NUM_COORDS : 1);
    }
    return STAI_SUCCESS;
}

stai_return_code stai_network_set_inputs(stai_network *network, const stai_ptr *inputs,
                                         const stai_size n_inputs)
{
    (void)network;
    return inputs && n_inputs == 1 ? STAI_SUCCESS : STAI_ERROR_GENERIC;
}

stai_return_code stai_network_run(stai_network *network, const stai_run_mode mode)
{
    (void)network;
    return mode == STAI_MODE_SYNC ? STAI_SUCCESS : STAI_ERROR_GENERIC;
}

stai_return_code stai_network_get_outputs(stai_network *network, stai_ptr *outputs,
                                          stai_size *n_outputs)
{
    int i;
    (void)network;
    if (frame < 0 || frame >= blazeear_num_vectors || *n_outputs < BLAZEEAR_NUM_OUTPUTS)
        return STAI_ERROR_GENERIC;
    for (i = 0; i < BLAZEEAR_NUM_OUTPUTS; i++)
        outputs[i] = (stai_ptr)(uintptr_t)blazeear_vectors[frame].outputs[i];
    *n_outputs = BLAZEEAR_NUM_OUTPUTS;
    return STAI_SUCCESS;
}

int blazeear_app_main(void);

int main(void)
{
    return blazeear_app_main();
}
