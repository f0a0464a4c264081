/* Stand-in for the stai_network.h that `stedgeai generate` writes (host test only). */
#ifndef STAI_NETWORK_H
#define STAI_NETWORK_H

#include "stai.h"

#define STAI_NETWORK_MODEL_NAME "network"
#define STAI_NETWORK_CONTEXT_SIZE 64
#define STAI_NETWORK_IN_NUM 1
#ifndef STAI_NETWORK_OUT_NUM
#define STAI_NETWORK_OUT_NUM BLAZEEAR_NUM_OUTPUTS /* the generated header has the number */
#endif

#endif
