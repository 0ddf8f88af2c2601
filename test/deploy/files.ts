/** The files under deploy/ as the deploy specs read them: where they are, their shapes, the panels. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const RULES = 'deploy/prometheus/rules.yml';
export const RULES_TEST = 'deploy/prometheus/rules.test.yml';
export const PROM_CONFIG = 'deploy/prometheus/prometheus.yml';
export const DASHBOARD = 'deploy/grafana/tessera-dashboard.json';
export const OPERATIONS = 'docs/operations.md';

/** A file of the repository, by its path from the root. */
export function readRepoFile(p: string): Promise<string> {
  return readFile(path.join(ROOT, p), 'utf8');
}

// --- file models --------------------------------------------------------------------------------

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
export interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[] }[];
}
export interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
export interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
export interface Dashboard {
  schemaVersion: number;
  uid?: string;
  title?: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string; datasource?: { type?: string; uid?: string } }[] };
  annotations?: { list: { expr?: string; builtIn?: number; datasource?: { type?: string; uid?: string } }[] };
}

/** Every panel, those inside collapsed rows included. */
export const allPanels = (dashboard: Dashboard): Panel[] => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
/** The panels that query (rows left out). */
export const queryPanels = (dashboard: Dashboard): Panel[] => allPanels(dashboard).filter((p) => p.type !== 'row');
