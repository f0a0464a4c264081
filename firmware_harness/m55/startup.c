/*
 * Bare-metal start-up for the Cortex-M55 of QEMU's mps3-an547 (Arm Corstone SSE-300 FPGA image):
 * vector table at 0x0 (ITCM), .data copied to and .bss zeroed in DTCM (0x20000000), FPU/MVE
 * enabled in CPACR, then main(); its return value becomes QEMU's exit status via semihosting.
 * No newlib crt0 (the rdimon crt0 hangs under QEMU here): link with -nostartfiles.
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, __stack_top;
extern int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void SysTick_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access (FPU and MVE) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    semihost_exit(main());
}

void Fault_Handler(void)
{
    static const char msg[] = "blazeear fault\n";
    int32_t h = semihost_open_stdout();
    if (h >= 0)
        semihost_write(h, msg, sizeof msg - 1);
    semihost_exit(3);
}

void Default_Handler(void)
{
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t blazeear_vector_table[16] = {
    (vector_t)(uintptr_t)&__stack_top, /* initial main stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
};
