/*
 * blazeear_pp: BlazeFace / BlazeEar post-processing for a microcontroller (portable C99).
 *
 * Input: the int8 (or uint8) output tensors of the network with their scales and zero points,
 * in the split layout (4 tensors: regressors and scores for the 16x16 and the 8x8 grid) or the
 * concatenated MediaPipe layout (2 tensors: regressors (1, 896, 16), classificators (1, 896, 1)).
 * Output: detections (score, box corners, six keypoints) normalised to the 128x128 input, best
 * first, optionally mapped back to image pixels with blazeear_pp_to_image().
 *
 * The arithmetic repeats blazeear_edge/postprocess.py (the NumPy reference) operation by
 * operation in float32, so the results are identical, not merely close. Compile with
 * -ffp-contract=off (no fused multiply-add), without -ffast-math, with FLT_EVAL_METHOD 0
 * (x86-64 SSE, Arm FPU; not x87), and on Helium cores with -fno-tree-vectorize: MVE vector
 * float instructions flush subnormals to zero where the scalar FPU (and NumPy) keep them.
 *
 *   dequantise   r = (float)(q - zp) * scale
 *   score        s = (float)(1.0 / (1.0 + exp(-(double)clip(r, -clip, clip)))), keep s >= thresh
 *                (an int8-domain pre-filter q >= qmin runs first; qmin is exact, see below;
 *                the score of every integer level is tabulated once at init)
 *   sort         score descending, ties by anchor index
 *   decode       xc = r0 / 128 * a.w + a.x ...   box = (xc - w * 0.5, yc - h * 0.5, ...);
 *                boxes with NaN or negative width/height are dropped
 *   cap          the first max_candidates valid boxes in that order enter NMS (top-K by score,
 *                ties by anchor index; 0 = all). It bounds the quadratic NMS: with every
 *                anchor above the threshold a frame costs O(896 log 896 + K^2), not O(896^2).
 *   NMS          MediaPipe WEIGHTED (score-weighted mean of the candidates, accumulated in
 *                candidate order, top score kept) or hard NMS; IoU > iou_thresh suppresses
 *
 * No dynamic allocation; the only library calls are exp(), log() and logf() from math.h. All working
 * memory lives in blazeear_pp_t (about 82 KiB with the default BLAZEEAR_PP_MAX_CANDIDATES, about
 * 26 KiB with -DBLAZEEAR_PP_MAX_CANDIDATES=128); declare it static.
 *
 * Typical use:
 *
 *   static blazeear_pp_t pp;
 *   static blazeear_pp_det_t dets[8];
 *   blazeear_pp_init(&pp, &blazeear_model);              // once: validates, computes qmin
 *   const void *outs[4] = {reg16, score16, reg8, score8};  // in the model's tensor order
 *   int n = blazeear_pp_run(&pp, outs, dets, 8);          // n >= 0 detections, < 0 error
 *   blazeear_pp_to_image(dets, n, &letterbox);            // optional: image pixels
 */
#ifndef BLAZEEAR_PP_H
#define BLAZEEAR_PP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BLAZEEAR_PP_NUM_ANCHORS 896
#define BLAZEEAR_PP_NUM_COORDS 16    /* box (4) + 6 keypoints (x, y) in the regressors */
#define BLAZEEAR_PP_NUM_KEYPOINTS 6
#define BLAZEEAR_PP_MAX_TENSORS 8

/* Candidates (valid boxes past the score threshold) stored for NMS in one frame. The default
 * (every anchor) can never overflow. A smaller value saves RAM (72 bytes per candidate); with
 * config.max_candidates in 1..BLAZEEAR_PP_MAX_CANDIDATES it can never overflow either (compile
 * with -DBLAZEEAR_PP_MAX_CANDIDATES=<the model's max_candidates>); otherwise
 * blazeear_pp_run() returns BLAZEEAR_PP_ERR_CAPACITY on a frame with more. */
#ifndef BLAZEEAR_PP_MAX_CANDIDATES
#define BLAZEEAR_PP_MAX_CANDIDATES BLAZEEAR_PP_NUM_ANCHORS
#endif
#if BLAZEEAR_PP_MAX_CANDIDATES < 1 || BLAZEEAR_PP_MAX_CANDIDATES > BLAZEEAR_PP_NUM_ANCHORS
#error "BLAZEEAR_PP_MAX_CANDIDATES must be within 1..896"
#endif

/* tensor kinds */
#define BLAZEEAR_PP_REGRESSORS 0 /* (1, anchor_count, 16) */
#define BLAZEEAR_PP_SCORES 1     /* (1, anchor_count, 1) logits */

/* tensor element types */
#define BLAZEEAR_PP_INT8 0
#define BLAZEEAR_PP_UINT8 1

/* NMS kinds */
#define BLAZEEAR_PP_NMS_WEIGHTED 0 /* MediaPipe */
#define BLAZEEAR_PP_NMS_HARD 1

/* status codes (negative returns) */
#define BLAZEEAR_PP_OK 0
#define BLAZEEAR_PP_ERR_ARG (-1)      /* bad model, configuration or argument */
#define BLAZEEAR_PP_ERR_COVERAGE (-2) /* tensors do not cover each anchor exactly once per kind */
#define BLAZEEAR_PP_ERR_CAPACITY (-3) /* more candidates than BLAZEEAR_PP_MAX_CANDIDATES */

/* One network output tensor (one entry of the manifest's artifact "outputs" list). */
typedef struct {
    int kind;           /* BLAZEEAR_PP_REGRESSORS or BLAZEEAR_PP_SCORES */
    int dtype;          /* BLAZEEAR_PP_INT8 or BLAZEEAR_PP_UINT8 */
    int anchor_start;   /* first anchor this tensor covers */
    int anchor_count;   /* anchors it covers (rows) */
    float scale;        /* real = (q - zero_point) * scale, scale > 0 */
    int32_t zero_point;
} blazeear_pp_tensor_t;

/* Decode parameters (the manifest's "decode" section). */
typedef struct {
    float score_thresh;  /* keep score >= score_thresh (0.5 MediaPipe) */
    float iou_thresh;    /* suppress IoU > iou_thresh (0.3 MediaPipe) */
    float score_clip;    /* logits clipped to [-clip, clip] before the sigmoid (100) */
    int nms;             /* BLAZEEAR_PP_NMS_WEIGHTED or BLAZEEAR_PP_NMS_HARD */
    int max_detections;  /* 0 = no cap (MediaPipe) */
    float x_scale, y_scale, w_scale, h_scale; /* 128 */
    int max_candidates;  /* top-K by score entering NMS (ties by anchor index); 0 = no cap.
                          * An initializer written before it existed leaves it 0. */
    /* ST pre-filter (st-app profile): also require q > (int8)trunc(logf(t / (1 - t)) / scale
     * + zero_point), the rounding of ST's lib_vision_models_pp; 0 = off (exact threshold) */
    int st_prefilter;
} blazeear_pp_config_t;

/* Everything constant about a model: tensors in the network's output order, anchors, decode. */
typedef struct {
    const blazeear_pp_tensor_t *tensors;
    int num_tensors;
    const float (*anchors)[4]; /* BLAZEEAR_PP_NUM_ANCHORS rows (x_center, y_center, w, h) */
    blazeear_pp_config_t config;
} blazeear_pp_model_t;

/* One detection. Coordinates are normalised to the 128x128 input (or image pixels after
 * blazeear_pp_to_image). */
typedef struct {
    float score;
    float box[4];  /* x0, y0, x1, y1 */
    float keypoints[2 * BLAZEEAR_PP_NUM_KEYPOINTS]; /* x0, y0, x1, y1, ... */
    int anchor;    /* anchor index of the top detection of its NMS group */
} blazeear_pp_det_t;

/* Where the resized image sits in the 128x128 input (blazeear_edge.preprocess.Letterbox). */
typedef struct {
    int width, height; /* original image */
    int new_w, new_h;  /* resized image inside the input */
    int pad_x, pad_y;  /* its top-left corner in input pixels */
    int size;          /* input size (128) */
} blazeear_pp_letterbox_t;

/* Working state: the model, the int8 thresholds and score tables, and the current frame. */
typedef struct {
    const blazeear_pp_model_t *model;
    int32_t score_qmin[BLAZEEAR_PP_MAX_TENSORS]; /* per tensor (scores only): q >= qmin passes */
    float score_lut[BLAZEEAR_PP_MAX_TENSORS][256]; /* score of level q at [q - qlo] (scores) */
    /* statistics of the last frame */
    int num_prefiltered;  /* logits that passed the int8 pre-filter */
    int num_passed;       /* of those, score >= thresh */
    int num_candidates;   /* candidates entering NMS: valid boxes, at most max_candidates */
    int capped;           /* 1 when max_candidates stopped the walk with score-passing anchors
                           * left unexamined (the cap may have bound) */
    int truncated;        /* 1 when max_out stopped NMS before max_detections / the end */
    /* anchors past the threshold, and their order (score descending, ties by anchor) */
    float pass_score[BLAZEEAR_PP_NUM_ANCHORS];
    uint16_t pass_anchor[BLAZEEAR_PP_NUM_ANCHORS];
    uint16_t order[BLAZEEAR_PP_NUM_ANCHORS];
    uint16_t scratch[BLAZEEAR_PP_NUM_ANCHORS];
    /* candidates of the current frame, already in that order */
    float cand_score[BLAZEEAR_PP_MAX_CANDIDATES];
    int32_t cand_anchor[BLAZEEAR_PP_MAX_CANDIDATES];
    float cand_coords[BLAZEEAR_PP_MAX_CANDIDATES][BLAZEEAR_PP_NUM_COORDS];
    uint16_t keep[BLAZEEAR_PP_MAX_CANDIDATES];
} blazeear_pp_t;

/* Validate the model and compute the int8 score thresholds. Returns BLAZEEAR_PP_OK or < 0. */
int blazeear_pp_init(blazeear_pp_t *pp, const blazeear_pp_model_t *model);

/* Full post-processing of one frame: outputs[i] is the buffer of model->tensors[i].
 * Writes at most max_out detections; returns their number or a negative status. */
int blazeear_pp_run(blazeear_pp_t *pp, const void *const *outputs, blazeear_pp_det_t *out,
                    int max_out);

/* The two halves of blazeear_pp_run (for timing): threshold + sort + decode + cap, then NMS. */
int blazeear_pp_candidates(blazeear_pp_t *pp, const void *const *outputs);
int blazeear_pp_nms(blazeear_pp_t *pp, blazeear_pp_det_t *out, int max_out);

/* Map n detections from input-normalised coordinates to original-image pixels, in place:
 * x = (u * size - pad_x) / ((float)new_w / (float)width). */
void blazeear_pp_to_image(blazeear_pp_det_t *dets, int n, const blazeear_pp_letterbox_t *lb);

/* Building blocks, exposed for tests. */
float blazeear_pp_sigmoid(float logit, float clip);
float blazeear_pp_iou(const float *a, const float *b);
int32_t blazeear_pp_score_qmin(const blazeear_pp_tensor_t *t, const blazeear_pp_config_t *cfg);
int32_t blazeear_pp_st_prefilter_level(const blazeear_pp_tensor_t *t, float score_thresh);

#ifdef __cplusplus
}
#endif

#endif /* BLAZEEAR_PP_H */
