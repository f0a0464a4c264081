/* blazeear_runner.c: see blazeear_runner.h. */
#include "blazeear_runner.h"

#include "blazeear_vectors.h"

static blazeear_pp_t pp;
static blazeear_pp_det_t dets[BLAZEEAR_PP_NUM_ANCHORS];
static blazeear_pp_model_t override;

int blazeear_run_vectors(blazeear_log_t *log, const blazeear_pp_model_t *model,
                         const char *model_name, blazeear_clock_fn clock,
                         const blazeear_log_kv_t *end_kv, int nend)
{
    int v, status = 0, rc;

    blazeear_log_begin(log, model_name, &model->config, blazeear_num_vectors);
    rc = blazeear_pp_init(&pp, model);
    if (rc != BLAZEEAR_PP_OK) {
        blazeear_log_error(log, -1, rc);
        blazeear_log_end(log, 0, 1, end_kv, nend);
        return 1;
    }
    for (v = 0; v < blazeear_num_vectors; v++) {
        const blazeear_vector_t *vec = &blazeear_vectors[v];
        uint32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        int n;
        blazeear_log_kv_t kv[7];
        int nkv = 0;

        /* a vector with its own decode configuration (hard NMS, a cap, another threshold) */
        if (vec->config != 0 || pp.model != model) {
            override = *model;
            if (vec->config != 0)
                override.config = *vec->config;
            rc = blazeear_pp_init(&pp, vec->config != 0 ? &override : model);
            if (rc != BLAZEEAR_PP_OK) {
                blazeear_log_error(log, v, rc);
                status = 1;
                continue;
            }
        }

        if (clock)
            t0 = clock();
        n = blazeear_pp_candidates(&pp, vec->outputs);
        if (clock)
            t1 = clock();
        if (n >= 0)
            n = blazeear_pp_nms(&pp, dets, BLAZEEAR_PP_NUM_ANCHORS);
        if (clock)
            t2 = clock();
        if (n >= 0 && vec->has_letterbox)
            blazeear_pp_to_image(dets, n, &vec->letterbox);
        if (clock)
            t3 = clock();
        if (n < 0) {
            blazeear_log_error(log, v, n);
            status = 1;
            continue;
        }
        kv[nkv].key = "prefiltered";
        kv[nkv++].value = (uint32_t)pp.num_prefiltered;
        kv[nkv].key = "passed";
        kv[nkv++].value = (uint32_t)pp.num_passed;
        kv[nkv].key = "candidates";
        kv[nkv++].value = (uint32_t)pp.num_candidates;
        kv[nkv].key = "capped";
        kv[nkv++].value = (uint32_t)pp.capped;
        if (clock) {
            kv[nkv].key = "ticks";
            kv[nkv++].value = t3 - t0;
            kv[nkv].key = "ticks_decode";
            kv[nkv++].value = t1 - t0;
            kv[nkv].key = "ticks_nms";
            kv[nkv++].value = t2 - t1;
        }
        blazeear_log_frame(log, v, vec->name, dets, n,
                           vec->has_letterbox ? &vec->letterbox : 0, kv, nkv);
    }
    blazeear_log_end(log, blazeear_num_vectors, status, end_kv, nend);
    return status;
}
