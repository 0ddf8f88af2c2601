// The authentication and rate-limit cost benchmark (part of `npm run bench`; alone: `node bench/security.mjs`).
// What do `auth` and `server.rateLimit` cost per request, against the same server without them?
// Request hooks are server-wide, so every server below is a `tessera serve` process of its own,
// serving the tiny `affine` model (inference nearly free: what is left is HTTP, the pipeline and
// the hooks) with the routing suite's batching:
//
//   plain               no auth, no rate limit (the reference)
//   plain-2             a second plain server: the A/A control
//   api-key             `auth.apiKeys`: the load's key among 20 others (compared in constant time);
//                       the load sends `x-api-key`
//   api-key-bearer      the same server, the load sending `Authorization: Bearer <key>`
//   rate-limit          `server.rateLimit: {max: 1e9, timeWindow: 1m}` (in-memory store; never refuses)
//   api-key+rate-limit  both: the production setting (the load counted under its key's name)
//   jwt                 `auth.jwt` with a JWKS file; the load sends an ES256 token made here with jose
//
// Points: concurrency 1 (the p50 difference in µs) and 16 (the throughput ratio), JSON. Rounds as
// in the routing suite: one warm-up and one measured window per contender back to back, the order
// rotated each round; each contender against plain round by round with a 95 % confidence interval,
// the target (≤ 3 %) judged on it (bench/lib/security-report.mjs). See docs/benchmarks.md,
// "Authentication and rate limits: cost".
//
// Environment (all optional):
//   BENCH_SUITES=…,security           suites `npm run bench` runs; this one skips itself without `security`
//   BENCH_QUICK=1                     smoke run: 1 s windows, 3 rounds, no retries
//   BENCH_SECURITY_WINDOW=3           seconds measured per window
//   BENCH_SECURITY_WARMUP=0.5         seconds of warm-up load before each window (not measured)
//   BENCH_SECURITY_PRIME=2            seconds of load on every contender before a point's first round
//   BENCH_SECURITY_ROUNDS=10          rounds per point (≥ 2)
//   BENCH_SECURITY_CONNECTIONS=1,16   the points: concurrency of the load generator
//   BENCH_SECURITY_CONTENDERS=plain,plain-2,api-key,api-key-bearer,rate-limit,api-key+rate-limit,jwt   (plain is always measured)
//   BENCH_SECURITY_KEYS=21            API keys in `auth.apiKeys` (the load's is the last)
//   BENCH_SECURITY_LOG_LEVEL=warn     server.logLevel
//   BENCH_SECURITY_RETRIES=1          a window during which other processes used > 40% of a core is measured again
//   BENCH_THREADS=…                   intraOpNumThreads (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name                the <machine> part of bench/results/<date>-<machine>-security.json
//   BENCH_WRITE=0                     write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                  keep the temporary folder (configs, server logs, JWKS)
//   BENCH_SECURITY_SECTION=security   the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_SECURITY_RENDER=<file>      measure nothing: write a results file (e.g. one from the device machine) into that section
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envList, envNumber, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, suiteTempDir } from './lib/common.mjs';
import { windowLine } from './lib/contest-report.mjs';
import { checkAnswer, contestFields, describeModels, gitInfo, measureWindow, measureWithRetries, prepareModels, rotated, roundSettings, runLoad, startTessera, finishRun, renderSavedAndExit, runSuite, writeSuiteOutputs } from './lib/contest.mjs';
import { waitQuiet } from './lib/llm-procs.mjs';
import { waitIdle } from './lib/probe.mjs';
import { REFERENCE, SECURITY_TARGETS, comparisonLine, evaluateSecurity, renderSecurityMarkdown, securityMarkers, targetLine } from './lib/security-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Authentication and rate limits: cost';

skipUnlessSuite('security', 'bench/security.mjs');

const section = securityMarkers(env.BENCH_SECURITY_SECTION);
await renderSavedAndExit(env.BENCH_SECURITY_RENDER, { section, heading: HEADING, render: renderSecurityMarkdown, log });

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const NOISY_OTHER_CPU_PCT = 40;
const MODEL = 'affine';
const RATE_LIMIT = { max: 1_000_000_000, timeWindow: '1m' };
const JWT = { issuer: 'https://issuer.bench.invalid/', audience: 'tessera-bench', alg: 'ES256' };

/** The servers: what each adds to the plain config. */
const SERVERS = {
  plain: { describe: 'no `auth`, no `server.rateLimit`' },
  'plain-2': { describe: 'the same as plain' },
  'api-key': { auth: 'keys', describe: '`auth.apiKeys`' },
  'rate-limit': { rateLimit: true, describe: '`server.rateLimit`' },
  'api-key+rate-limit': { auth: 'keys', rateLimit: true, describe: '`auth.apiKeys` and `server.rateLimit`' },
  jwt: { auth: 'jwt', describe: `\`auth.jwt\` (a JWKS file with one ${JWT.alg} key, \`issuer\`, \`audience\`)` },
};

/** Each contender: its server and the credential its load sends. */
const CONTENDERS = {
  plain: { server: 'plain' },
  'plain-2': { server: 'plain-2' },
  'api-key': { server: 'api-key', credential: 'x-api-key' },
  'api-key-bearer': { server: 'api-key', credential: 'bearer' },
  'rate-limit': { server: 'rate-limit' },
  'api-key+rate-limit': { server: 'api-key+rate-limit', credential: 'x-api-key' },
  jwt: { server: 'jwt', credential: 'jwt' },
};

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const picked = envList(env.BENCH_SECURITY_CONTENDERS, Object.keys(CONTENDERS).join(','));
for (const c of picked) if (!CONTENDERS[c]) throw new Error(`BENCH_SECURITY_CONTENDERS: unknown contender '${c}' (${Object.keys(CONTENDERS).join(', ')})`);
const settings = {
  quick,
  ...roundSettings('SECURITY', quick),
  connections: envList(env.BENCH_SECURITY_CONNECTIONS, '1,16').map(Number),
  keys: envNumber('BENCH_SECURITY_KEYS', 21, { min: 1, integer: true }),
  logLevel: env.BENCH_SECURITY_LOG_LEVEL ?? 'warn',
  sessionOptions: sessionOptionsFromEnv(),
  batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' },
  contenders: [REFERENCE, ...picked.filter((c) => c !== REFERENCE)],
};
if (settings.connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_SECURITY_CONNECTIONS=${env.BENCH_SECURITY_CONNECTIONS}: expected positive integers`);

installCleanup();
const tmp = suiteTempDir('security');

const results = {
  ...resultsHeader('security', 'bench/security.mjs'),
  versions: { core: packageVersion('@tessera/core'), onnxruntime: packageVersion('onnxruntime-node'), fastifyRateLimit: packageVersion('@fastify/rate-limit'), jose: packageVersion('jose'), autocannon: packageVersion('autocannon'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  targets: SECURITY_TARGETS,
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  rateLimit: RATE_LIMIT,
  keys: { count: settings.keys, bytes: 32 },
  servers: {},
  ...contestFields(),
};

/** The run's API keys (the load's, `bench`, last: a loop that stops at a match walks them all) and, with jwt, a signed token and its JWKS file. */
async function makeCredentials() {
  const apiKeys = Array.from({ length: settings.keys - 1 }, (_, i) => ({ name: `other-${i + 1}`, key: randomBytes(32).toString('hex'), scopes: ['infer'] }));
  const mine = { name: 'bench', key: randomBytes(32).toString('hex'), scopes: ['infer'] };
  apiKeys.push(mine);
  const creds = { apiKeys, key: mine.key, jwks: null, token: null };
  if (settings.contenders.some((c) => CONTENDERS[c].credential === 'jwt')) {
    const jose = await import('jose');
    const { publicKey, privateKey } = await jose.generateKeyPair(JWT.alg, { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'bench-1', alg: JWT.alg, use: 'sig' };
    creds.jwks = path.join(tmp, 'jwks.json');
    await writeFile(creds.jwks, JSON.stringify({ keys: [jwk] }));
    creds.token = await new jose.SignJWT({ scope: 'infer' })
      .setProtectedHeader({ alg: JWT.alg, kid: jwk.kid })
      .setSubject('bench')
      .setIssuer(JWT.issuer)
      .setAudience(JWT.audience)
      .setIssuedAt()
      .setExpirationTime('6h')
      .sign(privateKey);
  }
  return creds;
}

function serverConfig(name, tiny, creds) {
  const s = SERVERS[name];
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel, ...(s.rateLimit ? { rateLimit: RATE_LIMIT } : {}) },
    ...(s.auth === 'keys' ? { auth: { apiKeys: creds.apiKeys } } : {}),
    ...(s.auth === 'jwt' ? { auth: { jwt: { jwks: creds.jwks, issuer: JWT.issuer, audience: JWT.audience, algorithms: [JWT.alg] } } } : {}),
    models: {
      [MODEL]: {
        backend: 'onnxruntime',
        path: tiny.file,
        batching: { ...settings.batching },
        warmupShapes: tiny.warmupShapes,
        ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}),
      },
    },
  };
}

/** The header a contender's load sends, and how the docs show it (the secret elided). */
function credentialHeaders(credential, creds) {
  if (credential === 'x-api-key') return { headers: { 'x-api-key': creds.key }, sends: '`x-api-key: <key>`' };
  if (credential === 'bearer') return { headers: { authorization: `Bearer ${creds.key}` }, sends: '`Authorization: Bearer <key>`' };
  if (credential === 'jwt') return { headers: { authorization: `Bearer ${creds.token}` }, sends: `\`Authorization: Bearer <${JWT.alg} JWT, ${creds.token.length} characters>\`` };
  return { headers: {}, sends: '—' };
}

/**
 * That the server does what its config says, from one answer with and one without the credential:
 * auth refuses a request without one (401), the rate limit answers with its RateLimit headers.
 */
async function enforcement(server, model, withAuth, withRateLimit) {
  const ask = async (headers) => {
    const res = await fetch(`${server.url}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: await readFile(model.body.file), signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    return res;
  };
  const checks = [];
  const problems = [];
  const withCred = await ask(model.body.headers);
  const limit = withCred.headers.get('ratelimit-limit');
  if (withRateLimit) (limit ? checks : problems).push(`RateLimit-Limit: ${limit ?? 'missing'}${limit ? `, RateLimit-Remaining: ${withCred.headers.get('ratelimit-remaining')}` : ''}`);
  else if (limit) problems.push(`unexpected RateLimit-Limit: ${limit}`);
  if (withAuth) {
    const bare = await ask({});
    (bare.status === 401 ? checks : problems).push(`no credential → ${bare.status}`);
  }
  return { checks, problems };
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench security: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);

  const { tiny } = await prepareModels(tmp);
  results.models = describeModels({ tiny });
  const creds = await makeCredentials();
  const services = [];
  const servers = {};
  const skip = (id, reason) => {
    results.skipped.push({ id, reason });
    settings.contenders = settings.contenders.filter((c) => c !== id);
    log(`  skip ${id}: ${reason}`);
  };

  try {
    for (const name of [...new Set(settings.contenders.map((c) => CONTENDERS[c].server))]) {
      const t = performance.now();
      try {
        servers[name] = await startTessera(services, tmp, name, CLI, serverConfig(name, tiny, creds));
      } catch (err) {
        // a core without `auth` (or with another shape of it) refuses the config: those contenders are skipped
        if (name === REFERENCE) throw err;
        const reason = `its server did not start: ${String(err?.message ?? err).split('\n').find((l) => /TESSERA_E_|Error/.test(l)) ?? String(err).slice(0, 200)}`;
        for (const c of settings.contenders.filter((x) => CONTENDERS[x].server === name)) skip(c, reason);
        continue;
      }
      results.servers[name] = { describe: SERVERS[name].describe, startS: (performance.now() - t) / 1000, pid: servers[name].pid };
      log(`  ${name}: ${servers[name].url} (pid ${servers[name].pid})`);
    }
    const exclude = [process.pid, ...services.map((s) => s.pid)];
    const settle = async () => {
      await Promise.all(Object.values(servers).map((s) => waitIdle(s.pid)));
      return waitQuiet(new Set(exclude), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 500 });
    };

    const models = {};
    for (const c of [...settings.contenders]) {
      const { server: name, credential } = CONTENDERS[c];
      const { headers, sends } = credentialHeaders(credential, creds);
      models[c] = { ...tiny, name: MODEL, body: { ...tiny.body, headers: { ...tiny.body.headers, ...headers } } };
      const preflight = await checkAnswer(servers[name], models[c], c).catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
      const enforced = preflight.ok ? await enforcement(servers[name], models[c], Boolean(SERVERS[name].auth), Boolean(SERVERS[name].rateLimit)) : null;
      if (!preflight.ok || enforced.problems.length > 0) {
        if (c === REFERENCE) throw new Error(`preflight ${c}: ${preflight.error ?? enforced.problems.join('; ')}`);
        skip(c, `preflight: ${preflight.error ?? enforced.problems.join('; ')}`);
        continue;
      }
      results.contenders[c] = { server: name, describe: SERVERS[name].describe, sends, preflight, checks: ['expected answer', ...enforced.checks] };
    }
    results.settings.contenders = settings.contenders;
    log(`  preflight: ${settings.contenders.join(', ')} give the expected answer, and enforce what their config says`);

    results.points = settings.connections.map((n) => ({ id: `c${n}`, model: 'tiny', modelName: MODEL, protocol: 'json', connections: n }));
    for (const point of results.points) {
      log(`${point.id}: ${point.connections} connection(s), ${settings.rounds} rounds × ${settings.contenders.join(', ')}`);
      const serverOf = (c) => servers[CONTENDERS[c].server];
      if (settings.primeS > 0) for (const c of settings.contenders) await runLoad(`${serverOf(c).url}/v2/models/${MODEL}/infer`, models[c].body, point.connections, settings.primeS);
      for (let round = 1; round <= settings.rounds; round++) {
        for (const c of rotated(settings.contenders, round)) {
          const once = () =>
            measureWindow({ server: serverOf(c), point: { id: point.id, model: models[c], connections: point.connections }, contender: c, round, warmupS: settings.warmupS, durationS: settings.windowS, settle, exclude, cores: m.cores, noisyPct: NOISY_OTHER_CPU_PCT });
          const row = await measureWithRetries(once, settings.retries, { log });
          results.rows.push(row);
          log(windowLine(row));
        }
      }
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }

  const evaluated = evaluateSecurity(results);
  results.comparisons = evaluated.comparisons;
  results.verdicts = evaluated.targets;
  finishRun(results, started);
  log('');
  for (const c of results.comparisons) log(comparisonLine(c));
  for (const t of results.verdicts) log(targetLine(t));
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderSecurityMarkdown, log });
  log(`done in ${Math.round(results.elapsedS)} s`);
}

await runSuite('security', main, log);
