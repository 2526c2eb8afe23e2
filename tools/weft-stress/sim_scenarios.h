/*
 * tools/weft-stress/sim_scenarios.h - the scenarios written for
 * --deterministic (sim_scenarios.c): every one of them is a pure function of
 * its seed, interleaving included, when run on a simulated runtime.
 */
#ifndef WEFT_STRESS_SIM_SCENARIOS_H
#define WEFT_STRESS_SIM_SCENARIOS_H

#include "stress.h"

extern const stress_scenario stress_sim_scenarios[];
/* --pct, for the scenarios that make simulated runtimes of their own. */
extern unsigned stress_sim_pct;
extern const unsigned stress_sim_scenario_count;

#endif /* WEFT_STRESS_SIM_SCENARIOS_H */
