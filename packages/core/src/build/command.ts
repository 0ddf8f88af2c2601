import type { BuildReport } from '../contracts/backend.js';
import type { TesseraConfig } from '../config/types.js';
import type { BuildEnginesOptions, VersionBuild } from './build-engines.js';
import { buildEngines } from './build-engines.js';

/** Where the command writes: the report on `out`, progress and failures on `err`. */
export interface BuildEngineIo {
  out(line: string): void;
  err(line: string): void;
}

/** Bytes as `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The lines of one built version: the summary, then a line per file and per note. */
function reportLines(label: string, ms: number, report: BuildReport): string[] {
  const built = report.files.filter((f) => f.state === 'built').length;
  const reused = report.files.length - built;
  const lines = [`${label}: done in ${seconds(ms)}: ${built} file(s) built, ${reused} reused`];
  const width = Math.max(0, ...report.files.map((f) => formatBytes(f.bytes).length));
  for (const f of [...report.files].sort((a, b) => a.path.localeCompare(b.path))) lines.push(`  ${f.state.padEnd(6)}  ${formatBytes(f.bytes).padStart(width)}  ${f.path}`);
  for (const note of report.notes ?? []) lines.push(`  ${note}`);
  return lines;
}

/** The lines an outcome prints on stdout (a failure prints on stderr instead). */
export function outcomeLines(outcome: VersionBuild): string[] {
  const label = `${outcome.model} v${outcome.version} (${outcome.backend})`;
  if (outcome.state === 'nothing') return [`${label}: nothing to build (the ${outcome.backend} backend has no build step)`];
  if (outcome.state === 'built') return reportLines(label, outcome.ms, outcome.report);
  return [];
}

/**
 * `tessera build-engine [-c FILE] [--model M]`: builds what each backend builds ahead of time
 * (TensorRT engines) for every version of every model, or of `--model M`. Returns the exit code:
 * 0 when every build succeeded (or there was nothing to build), 1 when one failed — each failure
 * is one line on stderr, `tessera: CODE: message`, no stack.
 */
export async function buildEngineCommand(config: TesseraConfig, args: { model?: string | undefined }, io: BuildEngineIo, server?: BuildEnginesOptions['server']): Promise<number> {
  const outcomes = await buildEngines({
    config,
    ...(server ? { server } : {}),
    model: args.model,
    onStart: (model, version, backend) => io.err(`tessera build-engine: building ${model} v${version} (${backend}) …`),
    onDone: (outcome) => {
      if (outcome.state === 'failed') io.err(`tessera: ${outcome.error.code}: ${outcome.error.message}`);
      for (const line of outcomeLines(outcome)) io.out(line);
    },
  });
  const failed = outcomes.filter((o) => o.state === 'failed').length;
  const built = outcomes.filter((o) => o.state === 'built').length;
  const nothing = outcomes.length - failed - built;
  io.out(`${outcomes.length} version(s): ${built} built, ${nothing} with nothing to build, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}
