/*
 * Board hooks of app_main.c for the STM32N6570-DK (Cortex-M55 at 800 MHz + Neural-ART NPU).
 *
 * UNTESTED ON HARDWARE, and not compiled here (it needs ST's STM32CubeN6 HAL/BSP and camera
 * middleware). It shows where each hook plugs into ST's own N6 application template (e.g. the
 * STM32N6-GettingStarted-* projects): start from that project's main.c / app.c, keep its clock,
 * memory (NPU RAMs, external flash in memory-mapped mode for network_atonbuf.xSPI2.raw), cache
 * and camera set-up, and call blazeear_app_main() from its main() instead of its application.
 */
#include <stdint.h>

#include "blazeear_pp.h"
#include "stai.h"
#include "stm32n6570_discovery.h" /* BSP: COM port (ST-LINK virtual COM), LEDs */
#include "stm32n6xx_hal.h"

extern UART_HandleTypeDef hcom_uart[];        /* BSP_COM_Init(COM1, ...) sets it up */
extern void SystemClock_Config(void);          /* from ST's template main.c */
extern void NPU_Memories_And_Cache_Init(void); /* ST template: NPU RAMs, NPU cache, RIF/IAC */
extern void Camera_Start_NN_Pipe(uint8_t *dst);/* ST template: CMW pipe 2 -> 128x128 RGB888 */
extern volatile int camera_nn_frame_ready;     /* set by the pipe 2 frame-event callback */

/* Network input: 128x128 RGB888 written by the camera pipe. The NN pipe must reproduce the
 * letterbox the model expects (MediaPipe: aspect kept, black borders): configure the pipe's
 * output size to new_w x new_h and its destination at (pad_x, pad_y) in this buffer with a
 * 128*3-byte pitch, and clear the buffer once. For a uint8 input model (stedgeai
 * --input-data-type uint8) the pixels go in unchanged; for an int8 input apply
 * blazeear_input_lut (blazeear_model.h) or BLAZEEAR_INPUT_PIXEL_OFFSET. */
static uint8_t nn_input[128 * 128 * 3] __attribute__((aligned(32)));

#ifndef CAMERA_WIDTH
#define CAMERA_WIDTH 640
#define CAMERA_HEIGHT 480
#endif

int board_init(void)
{
    COM_InitTypeDef com = {0};

    HAL_Init();
    SystemClock_Config();
    NPU_Memories_And_Cache_Init();
    com.BaudRate = 921600;
    com.WordLength = COM_WORDLENGTH_8B;
    com.StopBits = COM_STOPBITS_1;
    com.Parity = COM_PARITY_NONE;
    com.HwFlowCtl = COM_HWCONTROL_NONE;
    if (BSP_COM_Init(COM1, &com) != BSP_ERROR_NONE)
        return 1;
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk; /* DWT cycle counter */
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    Camera_Start_NN_Pipe(nn_input);
    return 0;
}

int board_next_frame(stai_ptr *input, blazeear_pp_letterbox_t *lb, const char **name)
{
    /* The letterbox the NN pipe applies (blazeear_edge.preprocess.Letterbox.for_image). */
    static const blazeear_pp_letterbox_t camera_lb = {CAMERA_WIDTH, CAMERA_HEIGHT, 128, 96, 0, 16,
                                                      128};
    while (!camera_nn_frame_ready) {
        __WFI();
    }
    camera_nn_frame_ready = 0;
    /* the NPU reads the input through its own port: write the CPU's view of it back first */
    SCB_CleanDCache_by_Addr((uint32_t *)nn_input, (int32_t)sizeof nn_input);
    *input = nn_input;
    *lb = camera_lb;
    *name = "camera";
    return 1; /* runs forever */
}

void board_outputs_ready(stai_ptr *outputs, const int *size_bytes, int n)
{
    int i;
    for (i = 0; i < n; i++) /* drop stale cache lines over what the NPU wrote */
        SCB_InvalidateDCache_by_Addr((uint32_t *)outputs[i], (int32_t)((size_bytes[i] + 31) & ~31));
}

void board_log_write(void *user, const char *text, int len)
{
    (void)user;
    HAL_UART_Transmit(&hcom_uart[COM1], (const uint8_t *)text, (uint16_t)len, HAL_MAX_DELAY);
}

uint32_t board_cycles(void)
{
    return DWT->CYCCNT;
}
