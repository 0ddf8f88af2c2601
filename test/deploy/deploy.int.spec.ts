/**
 * deploy/ through the real promtool (Debian package `prometheus`; CI installs it with
 * scripts/ensure-promtool.sh): the Prometheus rules, their promtool unit tests, the scrape config
 * and every expression of the Grafana dashboard. Without promtool they fail, unless
 * TESSERA_SKIP_PROMTOOL=1, which skips them with a reason. deploy.spec.ts checks the same files
 * without promtool.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import type { Dashboard, Panel } from './files.js';
import { DASHBOARD, PROM_CONFIG, ROOT, RULES, RULES_TEST, queryPanels as queryPanelsOf, readRepoFile } from './files.js';

let dashboard: Dashboard;

beforeAll(async () => {
  dashboard = JSON.parse(await readRepoFile(DASHBOARD)) as Dashboard;
});

const queryPanels = (): Panel[] => queryPanelsOf(dashboard);

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
      console.warn(`[deploy.int.spec] SKIPPED promtool check: promtool is not installed and TESSERA_SKIP_PROMTOOL=1`);
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
