// A baseline server for the suites that compare today's build with an earlier one (bench/tracing.mjs:
// the commit before the core got its spans; bench/pipeline.mjs: the build before the serving
// pipeline): the same repository at another commit, in a git worktree under /tmp that is kept
// between runs (reused when it is at the right commit and built).
//
//   git worktree add --detach /tmp/tessera-base-<sha12> <sha>
//   cd /tmp/tessera-base-<sha12> && npm ci --no-audit --no-fund && npm run build
//
// onnxruntime-node's postinstall (it downloads CUDA libraries from a host this machine cannot
// reach) must stay blocked: the worktree's root package.json has to say
// `"allowScripts": {"onnxruntime-node": false}`; the install is refused otherwise, and checked
// afterwards (no CUDA provider library may have appeared).
//
// Nothing else is removed or changed: only `git worktree add` touches the main repository (its
// .git/worktrees entry); this module never commits, stashes, checks out or resets anything there.
//
// Where there is no npm (the device machine), `prebuiltBaseline(dir)` takes a tree that was built
// elsewhere and carried there: its packages/*/dist with a node_modules beside them.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** Runs a command, collecting its output (the last `keep` lines); resolves with { code, out }. */
function run(cmd, args, { cwd, env = {}, timeoutMs = 600_000, keep = 60 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    const push = (chunk) => {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(l);
      if (lines.length > keep) lines.splice(0, lines.length - keep);
    };
    child.stdout.on('data', push);
    child.stderr.on('data', push);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // a Ctrl-C of the benchmark must not leave an npm ci behind
    const onExit = () => child.kill('SIGKILL');
    process.once('exit', onExit);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      resolve({ code: code ?? signal, out: lines.join('\n') });
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      resolve({ code: 'spawn-error', out: String(err.message) });
    });
  });
}

async function git(root, args) {
  const r = await run('git', ['-C', root, ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: exit ${r.code}: ${r.out.split('\n').slice(-3).join(' | ')}`);
  return r.out.trim();
}

/** CUDA/TensorRT provider libraries that onnxruntime-node's postinstall would have downloaded. */
function installScriptTraces(dir) {
  const bin = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin');
  const found = [];
  const walk = (d, depth) => {
    if (depth > 6 || !existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (/providers_(cuda|tensorrt)|libcudnn|libcublas/i.test(e.name)) found.push(path.relative(dir, p));
    }
  };
  walk(bin, 0);
  return found;
}

/**
 * Makes sure the baseline server exists and is built. Resolves with
 * `{ ok: true, ref, sha, dir, cli, reused, seconds, steps }` or `{ ok: false, ref, sha?, dir?, reason, steps }`
 * (never throws: a baseline that cannot be built is skipped, not fatal).
 */
export async function ensureBaseline(root, ref, { log = () => {} } = {}) {
  const steps = [];
  const t0 = performance.now();
  let sha;
  let dir;
  try {
    sha = await git(root, ['rev-parse', '--verify', `${ref}^{commit}`]);
    dir = path.join('/tmp', `tessera-base-${sha.slice(0, 12)}`);
    const cli = path.join(dir, 'packages', 'core', 'dist', 'cli.js');
    const stamp = path.join(dir, '.tessera-bench-built');
    let reused = false;
    if (existsSync(dir)) {
      const head = await git(dir, ['rev-parse', 'HEAD']).catch(() => null);
      if (head !== sha) return { ok: false, ref, sha, dir, reason: `${dir} exists but is not a worktree at ${sha} (HEAD ${head ?? 'unknown'}); remove it by hand (git worktree remove --force ${dir})`, steps };
      if (existsSync(stamp) && existsSync(cli)) {
        reused = true;
        log(`  baseline: reusing ${dir} (${sha.slice(0, 12)}, built ${readFileSync(stamp, 'utf8').trim()})`);
        return { ok: true, ref, sha, dir, cli, reused, seconds: (performance.now() - t0) / 1000, steps };
      }
      log(`  baseline: ${dir} exists at ${sha.slice(0, 12)} but is not built yet: installing and building`);
    } else {
      log(`  baseline: git worktree add --detach ${dir} ${sha.slice(0, 12)}`);
      await git(root, ['worktree', 'add', '--detach', dir, sha]);
      steps.push('git worktree add');
    }
    // onnxruntime-node's install script must stay blocked
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    if (pkg.allowScripts?.['onnxruntime-node'] !== false) {
      return { ok: false, ref, sha, dir, reason: `the baseline's package.json does not block onnxruntime-node's install script (allowScripts: ${JSON.stringify(pkg.allowScripts ?? null)}); not installing it`, steps };
    }
    if (!existsSync(path.join(dir, 'node_modules', '.package-lock.json'))) {
      log('  baseline: npm ci --no-audit --no-fund (onnxruntime-node install script blocked by allowScripts)');
      const t = performance.now();
      const r = await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 600_000 });
      steps.push(`npm ci: exit ${r.code} in ${((performance.now() - t) / 1000).toFixed(0)} s`);
      if (r.code !== 0) return { ok: false, ref, sha, dir, reason: `npm ci failed (exit ${r.code}): ${r.out.split('\n').slice(-5).join(' | ')}`, steps };
    }
    const traces = installScriptTraces(dir);
    if (traces.length > 0) return { ok: false, ref, sha, dir, reason: `onnxruntime-node's install script ran in the baseline (found ${traces.slice(0, 3).join(', ')})`, steps };
    log('  baseline: npm run build');
    const t = performance.now();
    const b = await run('npm', ['run', 'build'], { cwd: dir, timeoutMs: 600_000, env: { TURBO_TELEMETRY_DISABLED: '1' } });
    steps.push(`npm run build: exit ${b.code} in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    if (b.code !== 0 || !existsSync(cli)) return { ok: false, ref, sha, dir, reason: `npm run build failed (exit ${b.code}): ${b.out.split('\n').slice(-5).join(' | ')}`, steps };
    writeFileSync(stamp, `${new Date().toISOString()}\n`);
    writeFileSync(path.join(dir, '.tessera-bench-sha'), `${sha}\n`);
    return { ok: true, ref, sha, dir, cli, reused, seconds: (performance.now() - t0) / 1000, steps };
  } catch (err) {
    return { ok: false, ref, ...(sha ? { sha } : {}), ...(dir ? { dir } : {}), reason: String(err?.message ?? err), steps };
  }
}

/**
 * A baseline built elsewhere: `dir` holds packages/core/dist/cli.js (and the other packages' dist)
 * with dependencies resolvable from it. Same result shape as `ensureBaseline`; `sha` is read from
 * `dir/.tessera-bench-sha` when present.
 */
export function prebuiltBaseline(dir, ref) {
  const cli = path.join(dir, 'packages', 'core', 'dist', 'cli.js');
  if (!existsSync(cli)) return { ok: false, ref, dir, reason: `${cli} is missing: not a built baseline`, steps: [] };
  const shaFile = path.join(dir, '.tessera-bench-sha');
  const sha = existsSync(shaFile) ? readFileSync(shaFile, 'utf8').trim() : 'unknown';
  return { ok: true, ref, sha, dir, cli, reused: true, prebuilt: true, seconds: 0, steps: ['prebuilt'] };
}
