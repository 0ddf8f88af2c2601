// Summarises a V8 .cpuprofile (node --cpu-prof): where the process's CPU time went, by function
// (self and inclusive time) and by module (the package or file the self time was spent in).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './common.mjs';

/** A short place name for a script URL: `undici/lib/...`, `core/dist/http/openai.js`, `node:internal/...`. */
function where(url) {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith('node:')) return u;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  if (u.startsWith(ROOT)) u = path.relative(ROOT, u);
  return u.replace(/^packages\//, '');
}

/** The module a place belongs to: an npm package, a Tessera package, a node: builtin, or a V8 pseudo-node. */
function moduleOf(fn, url) {
  if (!url) return fn.startsWith('(') ? fn : '(native: syscalls such as writev, V8 builtins)';
  const w = where(url);
  if (w.startsWith('node:')) return w.startsWith('node:internal/streams') ? 'node:internal/streams' : w.split('/').slice(0, 2).join('/');
  const parts = w.split('/');
  if (parts[0].startsWith('@')) return parts.slice(0, 2).join('/');
  if (['core', 'backend-vllm', 'backend-onnxruntime', 'tracing'].includes(parts[0])) return `@tessera/${parts[0]} (${parts.slice(1).join('/')})`;
  return parts[0];
}

/**
 * Top functions by self time and by inclusive time, and self time by module. Times in ms and in
 * percent of all sampled time (idle included, reported separately).
 */
export function summarizeCpuProfile(file, { top = 25, windowMs = null } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n) => {
    const f = n.callFrame;
    return f.url ? `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}` : f.functionName || '(anonymous native)';
  };
  const self = new Map();
  const incl = new Map();
  const modules = new Map();
  let total = 0;
  let idle = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // `windowMs`: [from, to] in ms after the profile's start; samples outside (start-up, shutdown) are skipped
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    at += (deltas[i] ?? 0) / 1000;
    // timeDeltas[i] is the time before sample i; attribute the following delta to this sample
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    if (dt <= 0) continue;
    if (windowMs && (at < windowMs[0] || at > windowMs[1])) continue;
    const node = byId.get(samples[i]);
    if (!node) continue;
    total += dt;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') {
      idle += dt;
      continue;
    }
    const k = key(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const m = moduleOf(fn, node.callFrame.url);
    modules.set(m, (modules.get(m) ?? 0) + dt);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      const kk = key(n);
      if (seen.has(kk) || n.callFrame.functionName === '(root)') continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const rows = (map, n, filter = () => true) =>
    [...map.entries()]
      .filter(([name]) => filter(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: Math.round(ms * 10) / 10, pctOfBusy: busy > 0 ? Math.round((ms / busy) * 1000) / 10 : null }));
  return {
    file,
    windowMs,
    sampledMs: Math.round(total),
    busyMs: Math.round(busy),
    idleMs: Math.round(idle),
    self: rows(self, top),
    inclusive: rows(incl, top),
    modules: rows(modules, 20),
    // Tessera's own functions (packages/<name>/dist) by inclusive time
    ownInclusive: rows(incl, top, (name) => /(^| )(core|backend-vllm)\/dist\//.test(name)),
  };
}
