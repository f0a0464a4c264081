/*
 * Test vectors: the int8 network outputs of real images (and hand-built cases), generated into
 * blazeear_vectors.c by `blazeear-edge harness` (blazeear_edge.harness.write_vectors_c). The
 * expected detections are not compiled in: the NumPy decode's results are kept in
 * expected.json beside them and compared with the device log on the host.
 */
#ifndef BLAZEEAR_VECTORS_H
#define BLAZEEAR_VECTORS_H

#include "blazeear_pp.h"

typedef struct {
    const char *name;
    const void *outputs[BLAZEEAR_PP_MAX_TENSORS]; /* in the model's tensor order */
    int has_letterbox;                  /* 1: log image pixels after `letterbox` */
    blazeear_pp_letterbox_t letterbox;
    const blazeear_pp_config_t *config; /* NULL: the model's decode configuration */
} blazeear_vector_t;

extern const blazeear_vector_t blazeear_vectors[];
extern const int blazeear_num_vectors;

#endif /* BLAZEEAR_VECTORS_H */
