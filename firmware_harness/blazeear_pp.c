/*
 * blazeear_pp.c: see blazeear_pp.h. Portable C99, no dynamic allocation, math.h only.
 *
 * Every float expression below is written in the order of blazeear_edge/postprocess.py; keep
 * them that way (and keep -ffp-contract=off) or the C and NumPy results stop being identical.
 */
#include "blazeear_pp.h"

#include <math.h>
#include <stddef.h>

static int32_t load_q(const blazeear_pp_tensor_t *t, const void *buf, int i)
{
    if (t->dtype == BLAZEEAR_PP_UINT8)
        return (int32_t)((const uint8_t *)buf)[i];
    return (int32_t)((const int8_t *)buf)[i];
}

static float dequantize(const blazeear_pp_tensor_t *t, int32_t q)
{
    return (float)(q - t->zero_point) * t->scale;
}

float blazeear_pp_sigmoid(float logit, float clip)
{
    float x = logit;
    if (x < -clip)
        x = -clip;
    if (x > clip)
        x = clip;
    /* double, rounded once to float: NumPy's and any libm's exp agree after this rounding */
    return (float)(1.0 / (1.0 + exp(-(double)x)));
}

static float score_of(const blazeear_pp_tensor_t *t, const blazeear_pp_config_t *cfg, int32_t q)
{
    return blazeear_pp_sigmoid(dequantize(t, q), cfg->score_clip);
}

/*
 * Smallest q whose score passes (score >= thresh), or qmax + 1 when none does.
 *
 * Start from ST's int8-domain threshold q >= zp + logit(thresh) / scale, then step it down while
 * the quantisation level below still passes and up while the level itself fails, evaluating the
 * exact float score. The score is non-decreasing in q (dequantisation, clip, sigmoid and
 * rounding are all monotone), so the pre-filter q >= qmin keeps exactly the logits whose float
 * score passes; blazeear_pp_candidates() still applies the float check to every survivor.
 */
int32_t blazeear_pp_score_qmin(const blazeear_pp_tensor_t *t, const blazeear_pp_config_t *cfg)
{
    const int32_t qlo = t->dtype == BLAZEEAR_PP_UINT8 ? 0 : -128;
    const int32_t qhi = t->dtype == BLAZEEAR_PP_UINT8 ? 255 : 127;
    const float thr = cfg->score_thresh;
    int32_t q;

    if (!(thr > 0.0f))
        return qlo; /* every score (>= 0) passes */
    if (thr < 1.0f) {
        double v = (double)t->zero_point +
                   log((double)thr / (1.0 - (double)thr)) / (double)t->scale;
        if (!(v > (double)qlo)) /* also catches NaN */
            q = qlo;
        else if (v > (double)qhi + 1.0)
            q = qhi + 1;
        else {
            q = (int32_t)v; /* v > qlo >= -128: truncation then a ceiling */
            if ((double)q < v)
                q++;
        }
    } else {
        q = qhi + 1; /* only scores that round to 1.0f can pass */
    }
    while (q > qlo && score_of(t, cfg, q - 1) >= thr)
        q--;
    while (q <= qhi && !(score_of(t, cfg, q) >= thr))
        q++;
    return q;
}

/* --- ST pre-filter (st-app profile) ------------------------------------------------------
 * ST's level T: a score passes when q > T, T = (int8)trunc(logf(t / (1 - t)) / scale + zp),
 * truncated toward zero and saturated to the type's range (postprocess.st_prefilter_level). */
int32_t blazeear_pp_st_prefilter_level(const blazeear_pp_tensor_t *t, float score_thresh)
{
    const int32_t qlo = t->dtype == BLAZEEAR_PP_UINT8 ? 0 : -128;
    const int32_t qhi = t->dtype == BLAZEEAR_PP_UINT8 ? 255 : 127;
    float v = logf(score_thresh / (1.0f - score_thresh)) / t->scale + (float)t->zero_point;

    if (v != v)
        return qhi;
    if (v <= (float)(qlo - 1))
        return qlo - 1;
    if (v >= (float)qhi)
        return qhi;
    return (int32_t)v; /* C conversion truncates toward zero */
}
/* --- end ST pre-filter ------------------------------------------------------------------- */

int blazeear_pp_init(blazeear_pp_t *pp, const blazeear_pp_model_t *model)
{
    const blazeear_pp_config_t *cfg;
    int i, a;

    if (pp == NULL || model == NULL || model->tensors == NULL || model->anchors == NULL)
        return BLAZEEAR_PP_ERR_ARG;
    if (model->num_tensors < 2 || model->num_tensors > BLAZEEAR_PP_MAX_TENSORS)
        return BLAZEEAR_PP_ERR_ARG;
    cfg = &model->config;
    if (cfg->score_thresh != cfg->score_thresh || cfg->iou_thresh != cfg->iou_thresh ||
        !(cfg->score_clip >= 0.0f) || cfg->max_detections < 0 || cfg->max_candidates < 0 ||
        (cfg->nms != BLAZEEAR_PP_NMS_WEIGHTED && cfg->nms != BLAZEEAR_PP_NMS_HARD))
        return BLAZEEAR_PP_ERR_ARG;
    for (i = 0; i < model->num_tensors; i++) {
        const blazeear_pp_tensor_t *t = &model->tensors[i];
        if ((t->kind != BLAZEEAR_PP_REGRESSORS && t->kind != BLAZEEAR_PP_SCORES) ||
            (t->dtype != BLAZEEAR_PP_INT8 && t->dtype != BLAZEEAR_PP_UINT8) ||
            t->anchor_start < 0 || t->anchor_count < 1 ||
            t->anchor_start + t->anchor_count > BLAZEEAR_PP_NUM_ANCHORS ||
            !(t->scale > 0.0f) || t->scale > 3.4e38f)
            return BLAZEEAR_PP_ERR_ARG;
    }
    /* every anchor: exactly one regressor tensor and exactly one score tensor */
    for (a = 0; a < BLAZEEAR_PP_NUM_ANCHORS; a++) {
        int nr = 0, ns = 0;
        for (i = 0; i < model->num_tensors; i++) {
            const blazeear_pp_tensor_t *t = &model->tensors[i];
            if (a >= t->anchor_start && a < t->anchor_start + t->anchor_count) {
                if (t->kind == BLAZEEAR_PP_REGRESSORS)
                    nr++;
                else
                    ns++;
            }
        }
        if (nr != 1 || ns != 1)
            return BLAZEEAR_PP_ERR_COVERAGE;
    }
    pp->model = model;
    for (i = 0; i < BLAZEEAR_PP_MAX_TENSORS; i++)
        pp->score_qmin[i] = 0;
    for (i = 0; i < model->num_tensors; i++) {
        const blazeear_pp_tensor_t *t = &model->tensors[i];
        if (t->kind == BLAZEEAR_PP_SCORES) {
            /* the score of every integer level, once: a frame then costs a table look-up per
             * anchor past the pre-filter, never an exp() (same function, same values) */
            const int32_t qlo = t->dtype == BLAZEEAR_PP_UINT8 ? 0 : -128;
            int k;
            pp->score_qmin[i] = blazeear_pp_score_qmin(t, cfg);
            for (k = 0; k < 256; k++)
                pp->score_lut[i][k] = score_of(t, cfg, qlo + k);
        }
    }
    if (cfg->st_prefilter) /* ST pre-filter: q > T, i.e. q >= T + 1 */
        for (i = 0; i < model->num_tensors; i++)
            if (model->tensors[i].kind == BLAZEEAR_PP_SCORES) {
                int32_t t1 = blazeear_pp_st_prefilter_level(&model->tensors[i],
                                                            cfg->score_thresh) + 1;
                if (t1 > pp->score_qmin[i])
                    pp->score_qmin[i] = t1;
            }
    pp->num_prefiltered = 0;
    pp->num_passed = 0;
    pp->num_candidates = 0;
    pp->capped = 0;
    pp->truncated = 0;
    return BLAZEEAR_PP_OK;
}

/* Decode anchor a from regressor row `row` of tensor t; 0 when the box is rejected (NaN or
 * negative width/height), as the NumPy decode does. */
static int decode_one(const blazeear_pp_model_t *model, const blazeear_pp_tensor_t *t,
                      const void *buf, int row, int a, float *c)
{
    const blazeear_pp_config_t *cfg = &model->config;
    const float ax = model->anchors[a][0], ay = model->anchors[a][1];
    const float aw = model->anchors[a][2], ah = model->anchors[a][3];
    const float half = 0.5f;
    float r[BLAZEEAR_PP_NUM_COORDS];
    float xc, yc, w, h;
    int k;

    for (k = 0; k < BLAZEEAR_PP_NUM_COORDS; k++)
        r[k] = dequantize(t, load_q(t, buf, row * BLAZEEAR_PP_NUM_COORDS + k));
    xc = r[0] / cfg->x_scale * aw + ax;
    yc = r[1] / cfg->y_scale * ah + ay;
    w = r[2] / cfg->w_scale * aw;
    h = r[3] / cfg->h_scale * ah;
    c[0] = xc - w * half;
    c[1] = yc - h * half;
    c[2] = xc + w * half;
    c[3] = yc + h * half;
    for (k = 0; k < BLAZEEAR_PP_NUM_KEYPOINTS; k++) {
        c[4 + 2 * k] = r[4 + 2 * k] / cfg->x_scale * aw + ax;
        c[5 + 2 * k] = r[5 + 2 * k] / cfg->y_scale * ah + ay;
    }
    for (k = 0; k < BLAZEEAR_PP_NUM_COORDS; k++)
        if (c[k] != c[k])
            return 0;
    return c[2] >= c[0] && c[3] >= c[1];
}

/* first index >= i whose level is >= qmin, or n */
static int scan_int8(const int8_t *p, int i, int n, int32_t qmin)
{
    while (i < n && (int32_t)p[i] < qmin)
        i++;
    return i;
}

static int scan_uint8(const uint8_t *p, int i, int n, int32_t qmin)
{
    while (i < n && (int32_t)p[i] < qmin)
        i++;
    return i;
}

/* i before j (indices into pass_score/pass_anchor): higher score first, then lower anchor
 * index (NumPy's stable sort by descending score of candidates kept in anchor order). */
static int before(const blazeear_pp_t *pp, int i, int j)
{
    const float si = pp->pass_score[i], sj = pp->pass_score[j];
    if (si != sj)
        return si > sj;
    return pp->pass_anchor[i] < pp->pass_anchor[j];
}

/* Bottom-up merge sort of pp->order[0..n) (stable, O(n log n), no recursion). */
static void sort_passed(blazeear_pp_t *pp, int n)
{
    uint16_t *src = pp->order, *dst = pp->scratch, *tmp;
    int width, i;

    for (i = 0; i < n; i++)
        src[i] = (uint16_t)i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            int lo = i, mid = i + width, hi = i + 2 * width, a, b, k;
            if (mid > n)
                mid = n;
            if (hi > n)
                hi = n;
            a = lo;
            b = mid;
            for (k = lo; k < hi; k++) {
                if (a < mid && (b >= hi || !before(pp, src[b], src[a])))
                    dst[k] = src[a++];
                else
                    dst[k] = src[b++];
            }
        }
        tmp = src;
        src = dst;
        dst = tmp;
    }
    if (src != pp->order)
        for (i = 0; i < n; i++)
            pp->order[i] = src[i];
}

/* index of the regressor tensor that holds anchor a (init checked there is exactly one) */
static int regressor_of(const blazeear_pp_model_t *model, int a)
{
    int ri;
    for (ri = 0; ri < model->num_tensors; ri++) {
        const blazeear_pp_tensor_t *r = &model->tensors[ri];
        if (r->kind == BLAZEEAR_PP_REGRESSORS && a >= r->anchor_start &&
            a < r->anchor_start + r->anchor_count)
            break;
    }
    return ri;
}

/* Threshold every score tensor: (score, anchor) of each anchor that passes, in pass_*[]. */
static int threshold_scores(blazeear_pp_t *pp, const void *const *outputs)
{
    const blazeear_pp_model_t *model = pp->model;
    const float thr = model->config.score_thresh;
    int ti, npass = 0, pre = 0;

    for (ti = 0; ti < model->num_tensors; ti++) {
        const blazeear_pp_tensor_t *t = &model->tensors[ti];
        const int32_t qmin = pp->score_qmin[ti];
        const int32_t qlo = t->dtype == BLAZEEAR_PP_UINT8 ? 0 : -128;
        const float *lut = pp->score_lut[ti];
        int i;
        if (t->kind != BLAZEEAR_PP_SCORES)
            continue;
        for (i = 0;; i++) {
            float s;
            /* int8-domain threshold: the background costs a load and a compare */
            if (t->dtype == BLAZEEAR_PP_INT8)
                i = scan_int8((const int8_t *)outputs[ti], i, t->anchor_count, qmin);
            else
                i = scan_uint8((const uint8_t *)outputs[ti], i, t->anchor_count, qmin);
            if (i >= t->anchor_count)
                break;
            pre++;
            s = lut[load_q(t, outputs[ti], i) - qlo];
            if (!(s >= thr))
                continue;
            pp->pass_score[npass] = s;
            pp->pass_anchor[npass] = (uint16_t)(t->anchor_start + i);
            npass++;
        }
    }
    pp->num_prefiltered = pre;
    pp->num_passed = npass;
    return npass;
}

int blazeear_pp_candidates(blazeear_pp_t *pp, const void *const *outputs)
{
    const blazeear_pp_model_t *model;
    int ti, k, npass, cap, n = 0;

    if (pp == NULL || pp->model == NULL || outputs == NULL)
        return BLAZEEAR_PP_ERR_ARG;
    model = pp->model;
    pp->num_candidates = 0;
    pp->num_prefiltered = 0;
    pp->num_passed = 0;
    pp->capped = 0;
    for (ti = 0; ti < model->num_tensors; ti++)
        if (outputs[ti] == NULL)
            return BLAZEEAR_PP_ERR_ARG;

    npass = threshold_scores(pp, outputs);
    sort_passed(pp, npass);
    /* decode in score order until the cap: the first max_candidates valid boxes enter NMS */
    cap = model->config.max_candidates;
    for (k = 0; k < npass; k++) {
        const int j = pp->order[k];
        const int a = pp->pass_anchor[j];
        int ri, c;
        float coords[BLAZEEAR_PP_NUM_COORDS];
        if (cap > 0 && n == cap) {
            pp->capped = 1;
            break;
        }
        ri = regressor_of(model, a);
        if (!decode_one(model, &model->tensors[ri], outputs[ri],
                        a - model->tensors[ri].anchor_start, a, coords))
            continue;
        if (n >= BLAZEEAR_PP_MAX_CANDIDATES)
            return BLAZEEAR_PP_ERR_CAPACITY;
        for (c = 0; c < BLAZEEAR_PP_NUM_COORDS; c++)
            pp->cand_coords[n][c] = coords[c];
        pp->cand_score[n] = pp->pass_score[j];
        pp->cand_anchor[n] = a;
        n++;
    }
    pp->num_candidates = n;
    return n;
}

float blazeear_pp_iou(const float *a, const float *b)
{
    const float ix0 = a[0] > b[0] ? a[0] : b[0];
    const float iy0 = a[1] > b[1] ? a[1] : b[1];
    const float ix1 = a[2] < b[2] ? a[2] : b[2];
    const float iy1 = a[3] < b[3] ? a[3] : b[3];
    const float iw = ix1 - ix0;
    const float ih = iy1 - iy0;
    const float inter = iw * ih;
    const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    const float uni = area_a + area_b - inter;
    if (!(iw > 0.0f && ih > 0.0f && uni > 0.0f))
        return 0.0f;
    return inter / uni;
}

static void emit(blazeear_pp_det_t *d, float score, int anchor, const float *c)
{
    int k;
    d->score = score;
    d->anchor = anchor;
    for (k = 0; k < 4; k++)
        d->box[k] = c[k];
    for (k = 0; k < 2 * BLAZEEAR_PP_NUM_KEYPOINTS; k++)
        d->keypoints[k] = c[4 + k];
}

int blazeear_pp_nms(blazeear_pp_t *pp, blazeear_pp_det_t *out, int max_out)
{
    const blazeear_pp_config_t *cfg;
    float thr;
    uint16_t *rem;
    int n, nrem, nout = 0;

    if (pp == NULL || pp->model == NULL || max_out < 0 || (max_out > 0 && out == NULL))
        return BLAZEEAR_PP_ERR_ARG;
    cfg = &pp->model->config;
    thr = cfg->iou_thresh;
    n = pp->num_candidates;
    pp->truncated = 0;
    rem = pp->keep; /* remaining candidates, best first; compacted in place each round */
    for (nrem = 0; nrem < n; nrem++)
        rem[nrem] = (uint16_t)nrem; /* the candidates are stored in score order */
    nrem = n;
    while (nrem > 0) {
        const int top = rem[0];
        const float *tb = pp->cand_coords[top];
        int k, keep = 0;
        if (nout == max_out) {
            pp->truncated = 1;
            break;
        }
        if (cfg->nms == BLAZEEAR_PP_NMS_WEIGHTED) {
            float acc[BLAZEEAR_PP_NUM_COORDS], total = 0.0f;
            int c, ncand = 0;
            for (k = 0; k < nrem; k++) {
                const int j = rem[k];
                if (blazeear_pp_iou(tb, pp->cand_coords[j]) > thr) {
                    const float w = pp->cand_score[j];
                    const float *cj = pp->cand_coords[j];
                    if (ncand == 0) {
                        for (c = 0; c < BLAZEEAR_PP_NUM_COORDS; c++)
                            acc[c] = cj[c] * w;
                        total = w;
                    } else {
                        for (c = 0; c < BLAZEEAR_PP_NUM_COORDS; c++)
                            acc[c] = acc[c] + cj[c] * w;
                        total = total + w;
                    }
                    ncand++;
                } else {
                    rem[keep++] = (uint16_t)j;
                }
            }
            if (ncand > 0) {
                for (c = 0; c < BLAZEEAR_PP_NUM_COORDS; c++)
                    acc[c] = acc[c] / total;
                emit(&out[nout], pp->cand_score[top], pp->cand_anchor[top], acc);
            } else {
                emit(&out[nout], pp->cand_score[top], pp->cand_anchor[top], tb);
            }
            nout++;
            if (ncand == 0)
                break; /* nothing removed (a zero-area top): MediaPipe stops here */
        } else {
            emit(&out[nout], pp->cand_score[top], pp->cand_anchor[top], tb);
            nout++;
            for (k = 1; k < nrem; k++) {
                const int j = rem[k];
                if (!(blazeear_pp_iou(tb, pp->cand_coords[j]) > thr))
                    rem[keep++] = (uint16_t)j;
            }
        }
        nrem = keep;
        if (cfg->max_detections > 0 && nout >= cfg->max_detections)
            break;
    }
    return nout;
}

int blazeear_pp_run(blazeear_pp_t *pp, const void *const *outputs, blazeear_pp_det_t *out,
                    int max_out)
{
    const int n = blazeear_pp_candidates(pp, outputs);
    if (n < 0)
        return n;
    return blazeear_pp_nms(pp, out, max_out);
}

void blazeear_pp_to_image(blazeear_pp_det_t *dets, int n, const blazeear_pp_letterbox_t *lb)
{
    float sx, sy, size, px, py;
    int i, k;

    if (dets == NULL || lb == NULL || lb->width <= 0 || lb->height <= 0)
        return;
    sx = (float)lb->new_w / (float)lb->width;
    sy = (float)lb->new_h / (float)lb->height;
    size = (float)lb->size;
    px = (float)lb->pad_x;
    py = (float)lb->pad_y;
    for (i = 0; i < n; i++) {
        blazeear_pp_det_t *d = &dets[i];
        for (k = 0; k < 4; k += 2) {
            d->box[k] = (d->box[k] * size - px) / sx;
            d->box[k + 1] = (d->box[k + 1] * size - py) / sy;
        }
        for (k = 0; k < 2 * BLAZEEAR_PP_NUM_KEYPOINTS; k += 2) {
            d->keypoints[k] = (d->keypoints[k] * size - px) / sx;
            d->keypoints[k + 1] = (d->keypoints[k + 1] * size - py) / sy;
        }
    }
}
