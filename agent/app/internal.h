/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of agent/app. */
#ifndef NN_AGENT_APP_INTERNAL_H
#define NN_AGENT_APP_INTERNAL_H

#include <stddef.h>

#include "common/config.h"

struct nn_ship_dest_config;

/* Ship destinations from the config list (heap array the caller frees; strings borrowed
 * from the list). An empty list means the local aggregator at default_path. */
int nn__agent_dests(const struct nn_cfg_list *list, const char *default_path,
                    struct nn_ship_dest_config **out, size_t *n);

#endif
