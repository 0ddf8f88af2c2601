/**
 * deploy/: the Prometheus rules, their promtool unit tests, the scrape config and the Grafana
 * dashboard. promtool checks run the real promtool (Debian package `prometheus`; CI installs it
 * with scripts/ensure-promtool.sh). Without promtool they fail, unless TESSERA_SKIP_PROMTOOL=1,
 * which skips them with a reason. The dashboard checks need nothing but Node.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RULES = 'deploy/prometheus/rules.yml';
const RULES_TEST = 'deploy/prometheus/rules.test.yml';
const PROM_CONFIG = 'deploy/prometheus/prometheus.yml';
const DASHBOARD = 'deploy/grafana/tessera-dashboard.json';
const OPERATIONS = 'docs/operations.md';

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
  'tessera_route_rollbacks_total',
];
/** Every firm metric, by the name the dashboard must show somewhere (histograms by base name). */
const TESSERA_METRICS = [...TESSERA_SERIES, ...TESSERA_HISTOGRAMS];
const PROM_CLIENT_DEFAULTS = [
  'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total', 'process_start_time_seconds',
  'process_resident_memory_bytes', 'process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds', 'process_max_fds',
  'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_handles_total',
  'nodejs_active_requests', 'nodejs_active_requests_total', 'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes',
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

// --- file models --------------------------------------------------------------------------------

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[] }[];
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  schemaVersion: number;
  uid?: string;
  title?: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string; datasource?: { type?: string; uid?: string } }[] };
  annotations?: { list: { expr?: string; builtIn?: number; datasource?: { type?: string; uid?: string } }[] };
}

let rules: RuleFile;
let ruleTests: RuleTestFile;
let dashboard: Dashboard;
let operations: string;
let recordingRules: Map<string, string>;
let alerts: Rule[];

beforeAll(async () => {
  const read = (p: string) => readFile(path.join(ROOT, p), 'utf8');
  rules = parseYaml(await read(RULES)) as RuleFile;
  ruleTests = parseYaml(await read(RULES_TEST)) as RuleTestFile;
  dashboard = JSON.parse(await read(DASHBOARD)) as Dashboard;
  operations = await read(OPERATIONS);
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

const allPanels = (): Panel[] => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = (): Panel[] => allPanels().filter((p) => p.type !== 'row');

// --- promtool -------------------------------------------------------------------------------------

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[]): Promise<RunResult & { missing?: boolean }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e?.code === 'ENOENT') resolve({ code: -1, stdout, stderr, missing: true });
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const SKIP_PROMTOOL = process.env.TESSERA_SKIP_PROMTOOL === '1';
const MISSING =
  `promtool not found (${PROMTOOL}): run scripts/ensure-promtool.sh to install it (Debian package "prometheus"), ` +
  'or set TESSERA_SKIP_PROMTOOL=1 to skip the promtool checks';
let promtoolFound: boolean | undefined;

/** Runs promtool; fails the test when it is missing, or skips it under TESSERA_SKIP_PROMTOOL=1. */
async function promtool(ctx: TestContext, args: string[]): Promise<RunResult> {
  if (promtoolFound === undefined) promtoolFound = !(await run(PROMTOOL, ['--version'])).missing;
  if (!promtoolFound) {
    if (SKIP_PROMTOOL) {
      console.warn(`[deploy.spec] SKIPPED promtool check: promtool is not installed and TESSERA_SKIP_PROMTOOL=1`);
      ctx.skip('promtool is not installed and TESSERA_SKIP_PROMTOOL=1');
    }
    throw new Error(MISSING);
  }
  return run(PROMTOOL, args);
}

const output = (r: RunResult) => `${r.stdout}\n${r.stderr}`;

describe('promtool', () => {
  it('check rules: rules.yml is valid', async (ctx) => {
    const r = await promtool(ctx, ['check', 'rules', RULES]);
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('test rules: every alert fires on its input series and not on the others', async (ctx) => {
    const r = await promtool(ctx, ['test', 'rules', RULES_TEST]);
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('check config: prometheus.yml is valid and loads rules.yml (relative to itself)', async (ctx) => {
    const r = await promtool(ctx, ['check', 'config', PROM_CONFIG]);
    expect(r.code, output(r)).toBe(0);
    expect(output(r)).toMatch(/SUCCESS: 1 rule files found/);
    expect(output(r)).toContain('rules.yml');
  });

  describe('dashboard queries', () => {
    let dir: string;
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('every panel expression parses as PromQL', async (ctx) => {
      // Grafana variables replaced by what Grafana would send, each expression as a recording rule
      const grafana = (e: string) =>
        e
          .replace(/\$__rate_interval|\$__interval|\$__range/g, '5m')
          .replace(/\$\{?(\w+)\}?/g, '.*');
      const records = queryPanels().flatMap((p) =>
        (p.targets ?? []).map((t) => ({ record: `dashboard:panel_${p.id}:${(t.refId ?? 'x').toLowerCase()}`, expr: grafana(t.expr ?? '') })),
      );
      const annotations = (dashboard.annotations?.list ?? []).filter((a) => a.expr).map((a, i) => ({ record: `dashboard:annotation_${i}:expr`, expr: grafana(a.expr!) }));
      dir = await mkdtemp(path.join(tmpdir(), 'tessera-dashboard-'));
      const file = path.join(dir, 'dashboard-exprs.yml');
      await writeFile(file, stringifyYaml({ groups: [{ name: 'dashboard', rules: [...records, ...annotations] }] }));
      const r = await promtool(ctx, ['check', 'rules', file]);
      expect(r.code, output(r)).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${records.length + annotations.length} rules found`);
    });
  });
});

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

  it('should label every series with a legend', () => {
    for (const p of queryPanels()) for (const t of p.targets ?? []) expect((t as { legendFormat?: string }).legendFormat, `${p.title} ${t.refId}`).toMatch(/\{\{\w+\}\}/);
  });
});
