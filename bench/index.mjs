// `npm run bench` (after `npm run build`): the suites one after the other, each a `node` process of
// its own with this process's environment, stopping at the first that fails. Each suite skips
// itself when `BENCH_SUITES` leaves it out (bench/lib/common.mjs's skipUnlessSuite).
//
//   npm run bench                  every suite of the default list (bench/lib/common.mjs's BENCH_SUITES), in order
//   BENCH_SUITES=gpu npm run bench the suites named, in that order (gpu and python-gpu run only so)
//   npm run bench -- --soak        the soak alone (bench/soak.mjs: minutes of steady load, not in CI)
//
// Arguments other than `--soak` are refused, so that a misspelt flag does not start a 30-minute run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIR, BENCH_SUITES } from './lib/common.mjs';

/** The script of each suite of BENCH_SUITES. */
const SCRIPTS = {
  ocr: 'run.mjs',
  llm: 'llm.mjs',
  tracing: 'tracing.mjs',
  pipeline: 'pipeline.mjs',
  routing: 'routing.mjs',
  security: 'security.mjs',
  reload: 'reload.mjs',
  images: 'images.mjs',
  'canary-sim': 'canary-sim.mjs',
  // opt-in: GPU runs (`BENCH_SUITES=gpu,python-gpu`), not in the default list
  gpu: 'gpu.mjs',
  'python-gpu': 'python-gpu.mjs',
};
const SOAK = 'soak.mjs';

/** The suites to run: those `BENCH_SUITES` names, in its order, else the default list. */
const picked = process.env.BENCH_SUITES
  ? process.env.BENCH_SUITES.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  : BENCH_SUITES;
const missing = picked.filter((s) => !SCRIPTS[s]);
if (missing.length > 0) {
  process.stderr.write(`bench: no suite ${missing.join(', ')} (BENCH_SUITES takes ${Object.keys(SCRIPTS).join(', ')})\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--soak');
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown argument(s) ${unknown.join(' ')} (only --soak: the soak alone)\n`);
  process.exit(2);
}
const scripts = args.includes('--soak') ? [SOAK] : picked.map((s) => SCRIPTS[s]);

/** Runs `node bench/<script>` with the terminal and the environment of this process; resolves with its exit code. */
function runScript(script) {
  const child = spawn(process.execPath, [path.join(BENCH_DIR, script)], { stdio: 'inherit', env: process.env });
  // Ctrl-C reaches the child through the terminal; a SIGTERM sent to this process alone is passed on
  const forward = (signal) => child.kill(signal);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

for (const script of scripts) {
  const code = await runScript(script);
  if (code !== 0) {
    process.stderr.write(`bench: bench/${script} failed (exit ${code}); the suites after it were not run\n`);
    process.exit(code);
  }
}
