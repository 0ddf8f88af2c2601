import type { CounterMetric, GaugeMetric, MetricRegistrar, RouteOutcome } from '@tessera/core';

/** The series every strategy of this package exports (names shared across models; labels bounded by config). */
export interface RouteMetrics {
  /** 1 for the current state of the model's router, 0 for its other states. */
  state: GaugeMetric;
  rollbacks: CounterMetric;
  judgements: CounterMetric;
  outcomes: CounterMetric;
}

export function routeMetrics(metrics: MetricRegistrar): RouteMetrics {
  return {
    // with several workers each runs its own rollout: the share of workers in each state
    state: metrics.gauge({ name: 'tessera_route_state', help: "Routing state of a model's router: 1 for the state it is in, 0 for the others.", labelNames: ['model', 'strategy', 'state'], aggregator: 'average' }),
    rollbacks: metrics.counter({ name: 'tessera_route_rollbacks_total', help: 'Canary versions rolled back (by judgement or by an operator).', labelNames: ['model', 'version'] }),
    judgements: metrics.counter({ name: 'tessera_route_judgements_total', help: 'Judgements of a canary version by verdict: pass, fail, hold (too few requests to judge).', labelNames: ['model', 'version', 'verdict'] }),
    outcomes: metrics.counter({
      name: 'tessera_route_outcomes_total',
      help: 'Requests the router placed, by version, role (baseline, canary, variant, primary, shadow) and result class (ok, client_error, server_error).',
      labelNames: ['model', 'version', 'role', 'class'],
    }),
  };
}

/** Sets the state gauge: 1 for `current`, 0 for every other state of the strategy (so that each series exists). */
export function setState(m: RouteMetrics, model: string, strategy: string, states: readonly string[], current: string): void {
  for (const s of states) m.state.set({ model, strategy, state: s }, s === current ? 1 : 0);
}

export function countOutcome(m: RouteMetrics, outcome: RouteOutcome, role: string): void {
  m.outcomes.inc({ model: outcome.model, version: outcome.version, role, class: outcome.statusClass });
}
