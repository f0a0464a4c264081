/*
 * Cortex-M55 runner under QEMU mps3-an547: the test vectors through blazeear_pp, the device log
 * through semihosting, and SysTick tick counts per frame. QEMU does not model cycles; run it
 * with -icount shift=0 (one guest instruction = 1 ns of virtual time) so the counts are
 * deterministic, and convert ticks to instructions with the calibration loop below
 * (calib_instr instructions took calib_ticks ticks).
 */
#include <stdint.h>

#include "blazeear_model.h"
#include "blazeear_runner.h"
#include "semihost.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_MAX 0x00FFFFFFu

#define CALIB_ITERS 1000000u

#define SYST_COUNTFLAG (1u << 16)

static uint32_t systick_wraps;

void SysTick_Handler(void)
{
}

/* 32-bit up-counting tick clock from the 24-bit down-counting SysTick, without interrupts:
 * COUNTFLAG (cleared by reading CSR) tells that the counter wrapped since the last call, which
 * is enough as long as calls are less than 2^24 ticks apart (about 0.5 s of virtual time). */
static uint32_t clock_now(void)
{
    uint32_t lo = SYST_CVR;
    if (SYST_CSR & SYST_COUNTFLAG) {
        systick_wraps++;
        lo = SYST_CVR;
    }
    return (systick_wraps << 24) + (SYST_MAX - lo);
}

static void systick_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_MAX;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    while (SYST_CVR == 0) {
    }
    (void)SYST_CSR; /* clear a COUNTFLAG set by the first reload */
    systick_wraps = 0;
}

/* Two instructions per iteration (subs + bne): ticks per known instruction count. */
static uint32_t calibrate(uint32_t iters)
{
    uint32_t t0, t1;
    t0 = clock_now();
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(iters) : : "cc");
    t1 = clock_now();
    return t1 - t0;
}

static void write_tt(void *user, const char *text, int len)
{
    int32_t h = *(int32_t *)user;
    if (h >= 0)
        semihost_write(h, text, (uint32_t)len);
}

int main(void)
{
    static blazeear_log_t log;
    static int32_t tt;
    blazeear_log_kv_t kv[2];

    tt = semihost_open_stdout();
    if (tt < 0)
        return 2;
    systick_start();
    kv[0].key = "calib_instr";
    kv[0].value = 2u * CALIB_ITERS;
    kv[1].key = "calib_ticks";
    kv[1].value = calibrate(CALIB_ITERS);
    blazeear_log_init(&log, write_tt, &tt);
    return blazeear_run_vectors(&log, &blazeear_model, BLAZEEAR_MODEL_NAME, clock_now, kv, 2);
}
