/* Arm semihosting for the QEMU mps3-an547 runner (bkpt 0xab, M-profile). */
#ifndef BLAZEEAR_SEMIHOST_H
#define BLAZEEAR_SEMIHOST_H

#include <stdint.h>

#define SEMIHOST_SYS_OPEN 0x01
#define SEMIHOST_SYS_WRITE 0x05
#define SEMIHOST_SYS_EXIT 0x18
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline int32_t semihost_call(int32_t op, void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Open the host console (":tt", mode 4 = "w" = stdout); returns a handle or -1. */
int32_t semihost_open_stdout(void);
/* Write len bytes to the handle; returns the number of bytes NOT written. */
int32_t semihost_write(int32_t handle, const void *buf, uint32_t len);
/* Stop QEMU with this exit status (SYS_EXIT_EXTENDED). */
void semihost_exit(int32_t status) __attribute__((noreturn));

#endif
