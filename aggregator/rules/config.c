/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration table of the rule engine, in Prometheus's names and defaults (the global
 * evaluation_interval, --rules.alert.* flags and external labels/URL), for embedding in the
 * aggregator's configuration file. */
#include <stddef.h>

#include "aggregator/rules/rules.h"

#define OFF(f) offsetof(struct nn_rules_config, f)

const struct nn_cfg_option nn_rules_config_options[] = {
    {.name = "rule_files",
     .type = NN_CFG_STRLIST,
     .offset = OFF(rule_files),
     .help = "Globs of Prometheus rule files, loaded unchanged (re-read on reload)."},
    {.name = "evaluation_interval",
     .type = NN_CFG_DURATION,
     .offset = OFF(evaluation_interval_ms),
     .def = "1m",
     .help = "Evaluation interval of groups that do not set their own."},
    {.name = "resend_delay",
     .type = NN_CFG_DURATION,
     .offset = OFF(resend_delay_ms),
     .def = "1m",
     .help = "Minimum time before a firing alert is sent to Alertmanager again."},
    {.name = "external_labels",
     .type = NN_CFG_STRMAP,
     .offset = OFF(external_labels),
     .help = "Labels added to alerts (when absent) and visible as $externalLabels."},
    {.name = "external_url",
     .type = NN_CFG_STR,
     .offset = OFF(external_url),
     .def = "",
     .help = "URL under which nines is reached; prefix of alerts' generatorURL."},
    {.name = "for_outage_tolerance",
     .type = NN_CFG_DURATION,
     .offset = OFF(for_outage_tolerance_ms),
     .def = "1h",
     .help = "Maximum downtime after which the `for` state of alerts is not restored."},
    {.name = "for_grace_period",
     .type = NN_CFG_DURATION,
     .offset = OFF(for_grace_period_ms),
     .def = "10m",
     .help = "Minimum time an alert waits after a restart before firing, when its `for` is at "
             "least this long."},
    {.name = NULL},
};
