/**
 * deploy/ without promtool: the Prometheus rules, their promtool unit tests and the Grafana
 * dashboard read as data — names, labels, annotations, the metrics each expression reads, and
 * runbook links into docs/operations.md. Needs nothing but Node; deploy.int.spec.ts runs the real
 * promtool on the same files.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Dashboard, Panel, Rule, RuleFile, RuleTestFile } from './files.js';
import { DASHBOARD, OPERATIONS, RULES, RULES_TEST, allPanels as panelsOf, queryPanels as queryPanelsOf, readRepoFile } from './files.js';

// --- metric names allowed in expressions (DESIGN §6, prom-client 15 defaults, Prometheus) ---------

const TESSERA_HISTOGRAMS = [
  'tessera_request_duration_seconds',
  'tessera_queue_duration_seconds',
  'tessera_inference_duration_seconds',
  'tessera_batch_size',
  'tessera_llm_time_to_first_token_seconds',
  'tessera_llm_time_per_output_token_seconds',
];
const TESSERA_SERIES = [
  'tessera_requests_total',
  'tessera_queue_depth',
  'tessera_inflight_requests',
  'tessera_model_ready',
  'tessera_route_weight',
  'tessera_llm_tokens_total',
  'tessera_upstream_healthy',
  'tessera_config_generation',
  'tessera_config_last_reload_successful',
  'tessera_config_reloads_total',
  // exported by the routers of @tessera/router-canary (packages/router-canary/src/internal/metrics.ts)
  'tessera_route_rollbacks_total',
  'tessera_route_state',
  'tessera_route_judgements_total',
  'tessera_route_outcomes_total',
];
/** Every firm metric, by the name the dashboard must show somewhere (histograms by base name). */
const TESSERA_METRICS = [...TESSERA_SERIES, ...TESSERA_HISTOGRAMS];
const PROM_CLIENT_DEFAULTS = [
  'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total', 'process_start_time_seconds',
  'process_resident_memory_bytes', 'process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds', 'process_max_fds',
  'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources', 'nodejs_active_handles',
  'nodejs_active_requests', 'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes', 'nodejs_heap_space_size_total_bytes', 'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes', 'nodejs_version_info',
  ...['_bucket', '_sum', '_count'].map((s) => `nodejs_gc_duration_seconds${s}`),
];
/** Series Prometheus itself writes. */
const PROMETHEUS_SERIES = ['up', 'ALERTS'];
const RAW_SERIES = new Set([
  ...TESSERA_SERIES,
  ...TESSERA_HISTOGRAMS.flatMap((h) => ['_bucket', '_sum', '_count'].map((s) => h + s)),
  ...PROM_CLIENT_DEFAULTS,
  ...PROMETHEUS_SERIES,
]);

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: a small tokenizer, enough for rules and dashboards.
 * Drops string literals, label matchers, range/subquery brackets, grouping clauses, Grafana
 * variables and numbers; what is left is identifiers, of which those not called as functions and
 * not keywords are metric names.
 */
function metricNames(expr: string): Set<string> {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings (may hold { } $)
    .replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, ' ') // Grafana variables
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges, subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ') // grouping labels
    .replace(/\boffset\s+-?\w+/gi, ' ')
    .replace(/@\s*[\w.()]+/g, ' ');
  s = s.replace(/(?<![\w:])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)/gi, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const word = m[0];
    const after = s.slice(m.index + word.length);
    if (/^\s*\(/.test(after)) continue; // function or aggregation
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return names;
}

/** GitHub's anchor for a Markdown heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

let rules: RuleFile;
let ruleTests: RuleTestFile;
let dashboard: Dashboard;
let operations: string;
let recordingRules: Map<string, string>;
let alerts: Rule[];

beforeAll(async () => {
  rules = parseYaml(await readRepoFile(RULES)) as RuleFile;
  ruleTests = parseYaml(await readRepoFile(RULES_TEST)) as RuleTestFile;
  dashboard = JSON.parse(await readRepoFile(DASHBOARD)) as Dashboard;
  operations = await readRepoFile(OPERATIONS);
  const all = rules.groups.flatMap((g) => g.rules);
  recordingRules = new Map(all.filter((r) => r.record).map((r) => [r.record!, r.expr]));
  alerts = all.filter((r) => r.alert);
});

/** The raw series an expression reads, through recording rules. */
function rawSeries(expr: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  for (const name of metricNames(expr)) {
    const rec = recordingRules.get(name);
    if (rec === undefined) out.add(name);
    else if (!seen.has(name)) {
      seen.add(name);
      for (const n of rawSeries(rec, seen)) out.add(n);
    }
  }
  return out;
}

const allPanels = (): Panel[] => panelsOf(dashboard);
const queryPanels = (): Panel[] => queryPanelsOf(dashboard);

// --- rules.yml without promtool ---------------------------------------------------------------------

describe('rules.yml', () => {
  const EXPECTED_ALERTS = [
    'TesseraHighErrorRate',
    'TesseraHighRequestLatency',
    'TesseraQueueSaturated',
    'TesseraModelNotReady',
    'TesseraUpstreamDown',
    'TesseraAllUpstreamsDown',
    'TesseraCanaryRolledBack',
    'TesseraHighTimeToFirstToken',
    'TesseraTargetDown',
    'TesseraConfigReloadFailed',
  ];

  it('should hold the alerts in group "tessera"', () => {
    const group = rules.groups.find((g) => g.name === 'tessera');
    expect(group).toBeDefined();
    expect(group!.rules.map((r) => r.alert)).toEqual(expect.arrayContaining(EXPECTED_ALERTS));
    expect(group!.rules.every((r) => r.alert)).toBe(true);
  });

  it('should give every alert a for, a severity, a summary, a description and a runbook in docs/operations.md', () => {
    const anchors = new Set([...operations.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!)));
    for (const a of alerts) {
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
      const m = /^docs\/operations\.md#([\w-]+)$/.exec(a.annotations?.runbook_url ?? '');
      expect(m, `${a.alert} runbook_url`).not.toBeNull();
      expect(anchors.has(m![1]!), `${a.alert}: no heading for #${m![1]} in ${OPERATIONS}`).toBe(true);
    }
  });

  it('should name recording rules level:metric:operations after the tessera metric they aggregate', () => {
    expect(recordingRules.size).toBeGreaterThan(0);
    expect(recordingRules.has('model_version:tessera_request_duration_seconds:p99_5m')).toBe(true);
    for (const [name, expr] of recordingRules) {
      expect(name).toMatch(/^[a-z_]+:tessera_[a-z0-9_]+:[a-z0-9_]+$/);
      const metric = name.split(':')[1]!;
      const sources = [...rawSeries(expr)];
      expect(sources.some((s) => s.startsWith(metric) || metric.startsWith(s.replace(/_total$/, ''))), `${name} from ${sources.join(', ')}`).toBe(true);
    }
  });

  it('should read only known series', () => {
    for (const r of [...recordingRules.values(), ...alerts.map((a) => a.expr)]) {
      for (const n of rawSeries(r)) expect(RAW_SERIES.has(n), `unknown series ${n} in: ${r}`).toBe(true);
    }
  });

  it('should unit-test every alert both firing and not firing', () => {
    expect(ruleTests.rule_files).toEqual(['rules.yml']);
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert} never fires in ${RULES_TEST}`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert} has no not-firing case in ${RULES_TEST}`).toBe(true);
    }
  });
});

// --- the Grafana dashboard ------------------------------------------------------------------------

describe('metricNames (PromQL tokenizer)', () => {
  it('should find metric names and skip functions, labels, keywords, numbers and variables', () => {
    const e = `histogram_quantile(0.99, sum by (model, le) (rate(tessera_request_duration_seconds_bucket{model=~"$model", code!="5.."}[$__rate_interval])))
      / on (model) group_left(version) foo:bar:rate5m offset 1h > 1e3 unless ignoring(x) up == bool 0 or absent(nodejs_version_info) and Inf`;
    expect([...metricNames(e)].sort()).toEqual(['foo:bar:rate5m', 'nodejs_version_info', 'tessera_request_duration_seconds_bucket', 'up']);
    expect([...metricNames('sum(rate(x_total[5m])) by (le)')]).toEqual(['x_total']);
    expect([...metricNames('model_version:tessera_batch_size:mean5m{version="2"}')]).toEqual(['model_version:tessera_batch_size:mean5m']);
  });
});

describe('tessera-dashboard.json', () => {
  it('should be a Grafana dashboard of schemaVersion >= 39 with a uid and title', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.uid).toBeTruthy();
    expect(dashboard.title).toBeTruthy();
  });

  it('should take the datasource, model and version as template variables', () => {
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const q = (name: string) => {
      const v = vars.get(name);
      expect(v, name).toBeDefined();
      expect(v!.datasource?.uid).toBe('${datasource}');
      return typeof v!.query === 'string' ? v!.query : (v!.query as { query: string }).query;
    };
    expect(q('model')).toBe('label_values(tessera_requests_total, model)');
    expect(q('version')).toMatch(/^label_values\(tessera_requests_total(\{[^}]*\})?, version\)$/);
    for (const v of dashboard.templating.list) {
      const m = /label_values\(\s*([\w:]+)/.exec(typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? ''));
      if (m) expect(RAW_SERIES.has(m[1]!) || recordingRules.has(m[1]!), `variable ${v.name}: ${m[1]}`).toBe(true);
    }
  });

  it('should give panels unique ids, and every query panel a title, the ${datasource} datasource and targets', () => {
    const ids = allPanels().map((p) => p.id);
    expect(ids.every((id) => typeof id === 'number')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels()) {
      expect(p.title, `panel ${p.id}`).toBeTruthy();
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.gridPos, p.title).toBeDefined();
      const refs = p.targets!.map((t) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
      for (const t of p.targets!) {
        expect(t.expr?.trim(), `${p.title} ${t.refId}`).toBeTruthy();
        expect(t.datasource?.uid ?? '${datasource}', `${p.title} ${t.refId}`).toBe('${datasource}');
      }
    }
  });

  it('should query only DESIGN §6 metrics, prom-client defaults and recording rules from rules.yml', () => {
    const exprs = [
      ...queryPanels().flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr ?? '' }))),
      ...(dashboard.annotations?.list ?? []).filter((a) => a.expr).map((a) => ({ where: 'annotation', expr: a.expr! })),
    ];
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.size, `${where}: no metric in ${expr}`).toBeGreaterThan(0);
      for (const n of names) expect(RAW_SERIES.has(n) || recordingRules.has(n), `${where}: unknown metric ${n}`).toBe(true);
    }
  });

  it('should show every DESIGN §6 metric and the process defaults somewhere', () => {
    const shown = new Set(queryPanels().flatMap((p) => (p.targets ?? []).flatMap((t) => [...rawSeries(t.expr ?? '')])));
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const shownBase = new Set([...shown].map(base));
    for (const m of TESSERA_METRICS) expect(shown.has(m) || shownBase.has(m), `no panel shows ${m}`).toBe(true);
    for (const m of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) expect(shown.has(m), m).toBe(true);
  });

  it('should have a Rollouts row: state now and over time, route weights, requests by role, judgements by verdict, rollbacks, per-version errors and latency', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row');
    const row = rows.find((p) => p.title === 'Rollouts');
    expect(row, 'a row titled Rollouts').toBeDefined();
    // a row's panels are those below it, down to the next row (or inside it, when collapsed)
    const next = rows.find((p) => p.gridPos!.y > row!.gridPos!.y);
    const inRow = [...(row!.panels ?? []), ...dashboard.panels.filter((p) => p.type !== 'row' && p.gridPos!.y > row!.gridPos!.y && (!next || p.gridPos!.y < next.gridPos!.y))];
    const reads = (p: Panel) => new Set((p.targets ?? []).flatMap((t) => [...rawSeries(t.expr ?? '')]));
    const find = (what: string, test: (p: Panel) => boolean) => {
      const found = inRow.filter(test);
      expect(found.length, `Rollouts row: ${what}`).toBeGreaterThan(0);
      return found;
    };
    const state = [
      ...find('the state now (a stat of tessera_route_state)', (p) => p.type === 'stat' && reads(p).has('tessera_route_state')),
      ...find('the state over time (a state timeline of tessera_route_state)', (p) => p.type === 'state-timeline' && reads(p).has('tessera_route_state')),
    ];
    for (const p of state) {
      // every state of the three strategies (CANARY_STATES, AB_STATES, SHADOW_STATES) has a code and a text
      for (const s of ['progressing', 'paused', 'promoting', 'succeeded', 'failed', 'running', 'concluded', 'mirroring']) expect(p.targets!.map((t) => t.expr).join('\n'), `${p.title}: state ${s}`).toMatch(new RegExp(`state=~?"[^"]*\\b${s}\\b`));
    }
    find('route weights', (p) => reads(p).has('tessera_route_weight'));
    find('requests by role', (p) => reads(p).has('tessera_route_outcomes_total') && (p.targets ?? []).some((t) => /by \([^)]*\brole\b/.test(t.expr ?? '')));
    find('judgements by verdict', (p) => reads(p).has('tessera_route_judgements_total') && (p.targets ?? []).some((t) => /by \([^)]*\bverdict\b/.test(t.expr ?? '')));
    find('rollbacks', (p) => reads(p).has('tessera_route_rollbacks_total'));
    find('per-version error rate', (p) => reads(p).has('tessera_requests_total') && (p.targets ?? []).some((t) => /code=~"5\.\."/.test(t.expr ?? '') && /by \(model, version\)/.test(t.expr ?? '')));
    find('per-version p99', (p) => reads(p).has('tessera_request_duration_seconds_bucket') && (p.targets ?? []).some((t) => (t.expr ?? '').includes('model_version:tessera_request_duration_seconds:p99_5m')));
  });

  it('should label every series with a legend', () => {
    for (const p of queryPanels()) for (const t of p.targets ?? []) expect((t as { legendFormat?: string }).legendFormat, `${p.title} ${t.refId}`).toMatch(/\{\{\w+\}\}/);
  });
});
