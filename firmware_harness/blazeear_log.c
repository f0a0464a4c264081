/* blazeear_log.c: see blazeear_log.h. C99, no libc. */
#include "blazeear_log.h"

/* keeps two bytes free for the '\n' and the terminating 0 added by flush() */
static void put_char(blazeear_log_t *log, char ch)
{
    if (log->len < BLAZEEAR_LOG_LINE - 2)
        log->line[log->len++] = ch;
}

static void put_str(blazeear_log_t *log, const char *s)
{
    while (*s)
        put_char(log, *s++);
}

/* a name token: no spaces, '=' or control characters (they would break the key=value syntax) */
static void put_name(blazeear_log_t *log, const char *s)
{
    if (s == 0 || *s == 0) {
        put_char(log, '-');
        return;
    }
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        put_char(log, (ch <= ' ' || ch == '=' || ch == ',' || ch >= 127) ? '_' : (char)ch);
    }
}

static void put_uint(blazeear_log_t *log, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        put_char(log, tmp[--n]);
}

static void put_int(blazeear_log_t *log, int32_t v)
{
    if (v < 0) {
        put_char(log, '-');
        put_uint(log, (uint32_t)0 - (uint32_t)v);
    } else {
        put_uint(log, (uint32_t)v);
    }
}

int blazeear_log_hexfloat(char *buf, float v)
{
    static const char digits[] = "0123456789abcdef";
    union {
        float f;
        uint32_t u;
    } bits;
    uint32_t mant, e;
    int32_t ex;
    int n = 0, i, last;
    char ebuf[12];
    int en = 0;
    uint32_t ue;

    bits.f = v;
    mant = bits.u & 0x7fffffu;
    e = (bits.u >> 23) & 0xffu;
    if (e == 0xffu) {
        const char *s = mant ? "nan" : ((bits.u >> 31) ? "-inf" : "inf");
        while (*s)
            buf[n++] = *s++;
        buf[n] = 0;
        return n;
    }
    if (bits.u >> 31)
        buf[n++] = '-';
    buf[n++] = '0';
    buf[n++] = 'x';
    if (e == 0 && mant == 0) {
        buf[n++] = '0';
        buf[n++] = 'p';
        buf[n++] = '+';
        buf[n++] = '0';
        buf[n] = 0;
        return n;
    }
    if (e == 0) { /* subnormal: normalise */
        ex = -126;
        while (!(mant & 0x800000u)) {
            mant <<= 1;
            ex--;
        }
        mant &= 0x7fffffu;
    } else {
        ex = (int32_t)e - 127;
    }
    buf[n++] = '1';
    mant <<= 1; /* 24 bits: six hex digits */
    last = -1;
    for (i = 0; i < 6; i++)
        if ((mant >> (20 - 4 * i)) & 0xfu)
            last = i;
    if (last >= 0) {
        buf[n++] = '.';
        for (i = 0; i <= last; i++)
            buf[n++] = digits[(mant >> (20 - 4 * i)) & 0xfu];
    }
    buf[n++] = 'p';
    buf[n++] = ex < 0 ? '-' : '+';
    ue = (uint32_t)(ex < 0 ? -ex : ex);
    do {
        ebuf[en++] = (char)('0' + ue % 10u);
        ue /= 10u;
    } while (ue);
    while (en)
        buf[n++] = ebuf[--en];
    buf[n] = 0;
    return n;
}

static void put_float(blazeear_log_t *log, float v)
{
    char buf[24];
    blazeear_log_hexfloat(buf, v);
    put_str(log, buf);
}

static void put_key(blazeear_log_t *log, const char *key)
{
    put_char(log, ' ');
    put_str(log, key);
    put_char(log, '=');
}

static void put_kv(blazeear_log_t *log, const blazeear_log_kv_t *kv, int nkv)
{
    int i;
    for (i = 0; kv && i < nkv; i++) {
        put_key(log, kv[i].key);
        put_uint(log, kv[i].value);
    }
}

static void start(blazeear_log_t *log, const char *record)
{
    log->len = 0;
    put_str(log, "blazeear ");
    put_str(log, record);
}

static void flush(blazeear_log_t *log)
{
    log->line[log->len++] = '\n';
    log->line[log->len] = 0;
    if (log->write)
        log->write(log->user, log->line, log->len);
    log->len = 0;
}

void blazeear_log_init(blazeear_log_t *log, blazeear_log_write_fn write, void *user)
{
    log->write = write;
    log->user = user;
    log->len = 0;
}

void blazeear_log_begin(blazeear_log_t *log, const char *model_name,
                        const blazeear_pp_config_t *cfg, int frames)
{
    start(log, "begin");
    put_key(log, "version");
    put_uint(log, BLAZEEAR_LOG_VERSION);
    put_key(log, "model");
    put_name(log, model_name);
    if (cfg) {
        put_key(log, "nms");
        put_str(log, cfg->nms == BLAZEEAR_PP_NMS_HARD ? "hard" : "weighted");
        put_key(log, "score_thresh");
        put_float(log, cfg->score_thresh);
        put_key(log, "iou_thresh");
        put_float(log, cfg->iou_thresh);
        put_key(log, "max_detections");
        put_int(log, cfg->max_detections);
        put_key(log, "max_candidates");
        put_int(log, cfg->max_candidates);
    }
    put_key(log, "frames");
    put_int(log, frames);
    flush(log);
}

void blazeear_log_frame(blazeear_log_t *log, int index, const char *name,
                        const blazeear_pp_det_t *dets, int n, const blazeear_pp_letterbox_t *lb,
                        const blazeear_log_kv_t *kv, int nkv)
{
    int i, k;

    start(log, "frame");
    put_key(log, "index");
    put_int(log, index);
    put_key(log, "name");
    put_name(log, name);
    put_key(log, "dets");
    put_int(log, n);
    put_key(log, "space");
    put_str(log, lb ? "image" : "input");
    if (lb) {
        put_key(log, "letterbox");
        put_int(log, lb->width);
        put_char(log, ',');
        put_int(log, lb->height);
        put_char(log, ',');
        put_int(log, lb->new_w);
        put_char(log, ',');
        put_int(log, lb->new_h);
        put_char(log, ',');
        put_int(log, lb->pad_x);
        put_char(log, ',');
        put_int(log, lb->pad_y);
        put_char(log, ',');
        put_int(log, lb->size);
    }
    put_kv(log, kv, nkv);
    flush(log);
    for (i = 0; i < n; i++) {
        const blazeear_pp_det_t *d = &dets[i];
        start(log, "det");
        put_key(log, "frame");
        put_int(log, index);
        put_key(log, "i");
        put_int(log, i);
        put_key(log, "anchor");
        put_int(log, d->anchor);
        put_key(log, "score");
        put_float(log, d->score);
        put_key(log, "box");
        for (k = 0; k < 4; k++) {
            if (k)
                put_char(log, ',');
            put_float(log, d->box[k]);
        }
        put_key(log, "keypoints");
        for (k = 0; k < 2 * BLAZEEAR_PP_NUM_KEYPOINTS; k++) {
            if (k)
                put_char(log, ',');
            put_float(log, d->keypoints[k]);
        }
        flush(log);
    }
}

void blazeear_log_error(blazeear_log_t *log, int index, int code)
{
    start(log, "error");
    put_key(log, "frame");
    put_int(log, index);
    put_key(log, "code");
    put_int(log, code);
    flush(log);
}

void blazeear_log_end(blazeear_log_t *log, int frames, int status, const blazeear_log_kv_t *kv,
                      int nkv)
{
    start(log, "end");
    put_key(log, "frames");
    put_int(log, frames);
    put_key(log, "status");
    put_int(log, status);
    put_kv(log, kv, nkv);
    flush(log);
}
