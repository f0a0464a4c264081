/*
 * blazeear_log: writes detections in the "device log" text format that
 * `blazeear-edge parity --device-log` and blazeear_edge.harness.read_device_log() read.
 * Used unchanged by the host runner, the QEMU Cortex-M55 runner and the board application.
 *
 * One record per line, first token "blazeear", then the record type, then key=value tokens:
 *
 *   blazeear begin version=1 model=NAME nms=weighted score_thresh=F iou_thresh=F max_detections=N max_candidates=N frames=N
 *   blazeear frame index=I name=NAME dets=N space=input|image [letterbox=W,H,NW,NH,PX,PY,S] [key=uint ...]
 *   blazeear det frame=I i=K anchor=A score=F box=F,F,F,F keypoints=F,...(12 values)
 *   blazeear error frame=I code=C
 *   blazeear end frames=N status=S [key=uint ...]
 *
 * F is a float32 printed exactly as a C99 hexadecimal float ("0x1.8p-1", "-0x0p+0"), which
 * Python reads with float.fromhex(). No printf: the formatter below needs no libc.
 */
#ifndef BLAZEEAR_LOG_H
#define BLAZEEAR_LOG_H

#include <stdint.h>

#include "blazeear_pp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BLAZEEAR_LOG_VERSION 1
#define BLAZEEAR_LOG_LINE 720

/* Receives one complete line (with its trailing '\n'). */
typedef void (*blazeear_log_write_fn)(void *user, const char *text, int len);

typedef struct {
    const char *key;
    uint32_t value;
} blazeear_log_kv_t;

typedef struct {
    blazeear_log_write_fn write;
    void *user;
    int len;
    char line[BLAZEEAR_LOG_LINE];
} blazeear_log_t;

void blazeear_log_init(blazeear_log_t *log, blazeear_log_write_fn write, void *user);
void blazeear_log_begin(blazeear_log_t *log, const char *model_name,
                        const blazeear_pp_config_t *cfg, int frames);
/* A frame line and one det line per detection. lb == NULL: coordinates are normalised to the
 * 128x128 input (space=input); otherwise they are image pixels after that letterbox. */
void blazeear_log_frame(blazeear_log_t *log, int index, const char *name,
                        const blazeear_pp_det_t *dets, int n, const blazeear_pp_letterbox_t *lb,
                        const blazeear_log_kv_t *kv, int nkv);
void blazeear_log_error(blazeear_log_t *log, int index, int code);
void blazeear_log_end(blazeear_log_t *log, int frames, int status, const blazeear_log_kv_t *kv,
                      int nkv);

/* Formats v exactly as a hexadecimal float into buf (at least 24 bytes); returns the length. */
int blazeear_log_hexfloat(char *buf, float v);

#ifdef __cplusplus
}
#endif

#endif /* BLAZEEAR_LOG_H */
