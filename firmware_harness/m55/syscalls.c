/*
 * Semihosting calls and the few newlib system calls a bare-metal program may pull in
 * (newlib-nano; nothing here is used by blazeear_pp itself, which needs only exp and log).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "semihost.h"

int32_t semihost_open_stdout(void)
{
    static int32_t handle = -1;
    if (handle < 0) {
        uint32_t args[3] = {(uint32_t)(uintptr_t)":tt", 4u, 3u};
        handle = semihost_call(SEMIHOST_SYS_OPEN, args);
    }
    return handle;
}

int32_t semihost_write(int32_t handle, const void *buf, uint32_t len)
{
    uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, len};
    return semihost_call(SEMIHOST_SYS_WRITE, args);
}

void semihost_exit(int32_t status)
{
    uint32_t args[2] = {SEMIHOST_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, args);
    for (;;) {
    }
}

/* newlib system calls */
extern char end;             /* first free byte after .bss (linker script) */
extern char __heap_limit;    /* bottom of the stack reserve */

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int off, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
void *_sbrk(int incr);
void _exit(int status) __attribute__((noreturn));
int _kill(int pid, int sig);
int _getpid(void);

int _write(int fd, const char *buf, int len)
{
    int32_t h = semihost_open_stdout();
    (void)fd;
    if (h < 0 || len < 0)
        return -1;
    return len - (int)semihost_write(h, buf, (uint32_t)len);
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _lseek(int fd, int off, int whence)
{
    (void)fd;
    (void)off;
    (void)whence;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    (void)fd;
    return 1;
}

void *_sbrk(int incr)
{
    static char *brk = &end;
    char *prev = brk;
    if (incr < 0 || brk + incr > &__heap_limit) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return prev;
}

void _exit(int status)
{
    semihost_exit(status);
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
