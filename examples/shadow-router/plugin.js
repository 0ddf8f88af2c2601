// @ts-check
/**
 * A Tessera plugin with one routing strategy, `shadow-mirror`, in plain ESM JavaScript.
 *
 * Every request that names no version goes to `primary`; `shadowPercent` % of them are also
 * mirrored to `shadow` (the core sends the copy after the primary answered and discards its
 * answer). Which requests are mirrored is decided by hashing the request id, so a retried request
 * with the same `x-request-id` is mirrored (or not) again. The router counts the outcomes per
 * version and role, exports them on `/metrics`, keeps them in the server's state store (they
 * survive a restart) and shows them in `GET /v1/routing/{model}`:
 *
 *   models:
 *     cls:
 *       versions: { '1': { path: ./v1.onnx }, '2': { path: ./v2.onnx } }
 *       routing: { strategy: shadow-mirror, primary: '1', shadow: '2', shadowPercent: 50 }
 */
import { TesseraError, definePlugin } from '@tessera/core';

/**
 * @typedef {import('@tessera/core').JSONSchema} JSONSchema
 * @typedef {import('@tessera/core').RouteCandidate} RouteCandidate
 * @typedef {import('@tessera/core').RouteOutcome} RouteOutcome
 * @typedef {import('@tessera/core').RouteRequest} RouteRequest
 * @typedef {import('@tessera/core').RouteTarget} RouteTarget
 * @typedef {import('@tessera/core').Router} Router
 * @typedef {import('@tessera/core').RouterContext} RouterContext
 * @typedef {import('@tessera/core').RouterFactory} RouterFactory
 * @typedef {import('@tessera/core').RoutingStatus} RoutingStatus
 * @typedef {import('@tessera/core').CounterMetric} CounterMetric
 */

/** The strategy name: `routing.strategy: shadow-mirror`. */
export const STRATEGY = 'shadow-mirror';

/** The key under which the router keeps its counters in `ctx.state` (one file per model in `server.stateDir`). */
export const STATE_KEY = 'shadow-mirror-counters';

/** The router's own series on `/metrics`. */
export const OUTCOMES_METRIC = 'tessera_example_shadow_outcomes_total';

/** Defaults of the options the schema leaves optional. */
export const DEFAULT_SHADOW_PERCENT = 10;
export const DEFAULT_MIRROR_EXPLICIT = true;
export const DEFAULT_PERSIST_INTERVAL_MS = 1000;

/** A version label: `'2'` or `2` (YAML reads an unquoted 2 as a number). */
const VERSION_LABEL = { type: ['string', 'integer'], pattern: '^[1-9][0-9]*$', minimum: 1 };

/**
 * The `routing` keys besides `strategy`. The core validates the model's section against it before
 * the router is created (a typo stops the server with the key's path).
 * @type {JSONSchema}
 */
export const OPTIONS_SCHEMA = {
  type: 'object',
  required: ['primary', 'shadow'],
  additionalProperties: false,
  properties: {
    primary: { ...VERSION_LABEL, description: 'The version that answers every request that names none.' },
    shadow: { ...VERSION_LABEL, description: 'The version that receives mirrored copies (their answers are discarded).' },
    shadowPercent: { type: 'number', minimum: 0, maximum: 100, default: DEFAULT_SHADOW_PERCENT, description: `Share of requests mirrored to \`shadow\`, in percent (default ${DEFAULT_SHADOW_PERCENT}).` },
    mirrorExplicit: {
      type: 'boolean',
      default: DEFAULT_MIRROR_EXPLICIT,
      description: `Also mirror requests that name the primary version explicitly (default ${DEFAULT_MIRROR_EXPLICIT}).`,
    },
    persistIntervalMs: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_PERSIST_INTERVAL_MS,
      description: `How long counters may wait before they are written to the state store (default ${DEFAULT_PERSIST_INTERVAL_MS}); always written at shutdown.`,
    },
  },
};

/**
 * Outcomes of one version in one role.
 * @typedef {{ ok: number, clientError: number, serverError: number, durationMsSum: number }} Tally
 * @typedef {{ primary: Tally, shadow: Tally }} VersionTallies
 */

/** @returns {Tally} */
const emptyTally = () => ({ ok: 0, clientError: 0, serverError: 0, durationMsSum: 0 });

/**
 * 32-bit FNV-1a of a string: cheap, stable across processes and platforms (unlike Math.random),
 * so the same request id is always sampled the same way.
 * @param {string} text
 */
export function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Whether a request id falls into the mirrored share: the hash mod 10 000 against percent × 100,
 * so shares down to 0.01 % are honoured.
 * @param {string} id
 * @param {number} percent 0..100
 */
export function isMirrored(id, percent) {
  return fnv1a(id) % 10_000 < Math.round(percent * 100);
}

/**
 * What a persisted value may hold: tallies by version, only for versions configured now, and only
 * numbers (a hand-edited or older file must not break the router).
 * @param {unknown} stored
 * @param {readonly string[]} versions
 * @returns {Record<string, VersionTallies>}
 */
function restoreTallies(stored, versions) {
  /** @type {Record<string, VersionTallies>} */
  const out = {};
  const byVersion = stored !== null && typeof stored === 'object' ? /** @type {Record<string, any>} */ (stored) : {};
  for (const version of versions) {
    out[version] = { primary: emptyTally(), shadow: emptyTally() };
    for (const role of /** @type {const} */ (['primary', 'shadow'])) {
      const saved = byVersion[version]?.[role];
      if (saved === null || typeof saved !== 'object') continue;
      for (const field of /** @type {const} */ (['ok', 'clientError', 'serverError', 'durationMsSum'])) {
        const value = saved[field];
        if (typeof value === 'number' && Number.isFinite(value) && value >= 0) out[version][role][field] = value;
      }
    }
  }
  return out;
}

/**
 * A summary of one tally for `status()`: counts, mean latency and the error rate. Client errors
 * (4xx, 499) are the request's fault, never the version's: they are counted but left out of the rate.
 * @param {Tally} t
 */
function summarise(t) {
  const judged = t.ok + t.serverError;
  const requests = judged + t.clientError;
  return {
    requests,
    ok: t.ok,
    clientError: t.clientError,
    serverError: t.serverError,
    errorRate: judged === 0 ? 0 : t.serverError / judged,
    meanMs: requests === 0 ? 0 : t.durationMsSum / requests,
  };
}

/**
 * One model's shadow router. `select` is synchronous and cheap (a hash); `observe` only adds to
 * in-memory counters and schedules a write, so neither touches the disk on the request path.
 * @implements {Router}
 */
export class ShadowMirrorRouter {
  #ctx;
  #primary;
  #shadow;
  #percent;
  #mirrorExplicit;
  #persistMs;
  /** @type {Record<string, VersionTallies>} */
  #tallies;
  /** @type {CounterMetric} */
  #outcomes;
  /** @type {import('@tessera/core').ClockTimer | undefined} */
  #timer;
  #dirty = false;
  /** The write in flight: writes of the one key are chained, never concurrent. */
  #writing = Promise.resolve();
  #closed = false;

  /**
   * @param {RouterContext} ctx
   * @param {{ primary: string, shadow: string, shadowPercent: number, mirrorExplicit: boolean, persistIntervalMs: number }} options
   * @param {unknown} stored what the state store held for `STATE_KEY`
   */
  constructor(ctx, options, stored) {
    this.#ctx = ctx;
    this.#primary = options.primary;
    this.#shadow = options.shadow;
    this.#percent = options.shadowPercent;
    this.#mirrorExplicit = options.mirrorExplicit;
    this.#persistMs = options.persistIntervalMs;
    this.#tallies = restoreTallies(stored, ctx.versions);
    // Registering the same name again returns the same series family: one per server, every
    // model's router adds its own `model` label. Prometheus counters start at 0 in each process;
    // the durable totals are the ones in status().
    this.#outcomes = ctx.metrics.counter({
      name: OUTCOMES_METRIC,
      help: 'Outcomes of requests seen by the shadow-mirror router, by version, role (primary or shadow) and class (ok, client_error, server_error).',
      labelNames: ['model', 'version', 'role', 'class'],
    });
  }

  /**
   * @param {RouteRequest} request
   * @param {readonly RouteCandidate[]} candidates
   * @returns {RouteTarget}
   */
  select(request, candidates) {
    const primary = candidates.find((c) => c.version === this.#primary);
    if (!primary?.ready) {
      // never fall back to the shadow: it is the version under test
      throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${request.model}: primary version ${this.#primary} is not ready (shadow-mirror never sends primary traffic to the shadow)`, {
        headers: { 'retry-after': '1' },
      });
    }
    return isMirrored(request.id, this.#percent) ? { version: this.#primary, shadow: [this.#shadow] } : { version: this.#primary };
  }

  /**
   * Mirrors requests that name the primary explicitly, with the same sampling (`mirrorExplicit`).
   * A request that names the shadow itself, or another version, is not mirrored: copying it to the
   * shadow would compare the shadow with itself.
   * @param {RouteRequest} request
   * @param {readonly RouteCandidate[]} _candidates
   * @returns {readonly string[] | undefined}
   */
  shadowsFor(request, _candidates) {
    if (!this.#mirrorExplicit || request.version !== this.#primary) return undefined;
    return isMirrored(request.id, this.#percent) ? [this.#shadow] : undefined;
  }

  /**
   * Counts an outcome. Runs after the answer was sent and must not throw: unknown versions (not
   * configured) are ignored, which also keeps the metric's label values bounded.
   * @param {RouteOutcome} outcome
   */
  observe(outcome) {
    if (this.#closed) return;
    const tallies = this.#tallies[outcome.version];
    if (!tallies) return;
    const role = outcome.shadow ? 'shadow' : 'primary';
    const tally = tallies[role];
    if (outcome.statusClass === 'ok') tally.ok++;
    else if (outcome.statusClass === 'client_error') tally.clientError++;
    else tally.serverError++;
    if (Number.isFinite(outcome.durationMs)) tally.durationMsSum += outcome.durationMs;
    this.#outcomes.inc({ model: outcome.model, version: outcome.version, role, class: outcome.statusClass });
    this.#schedulePersist();
  }

  /** @returns {RoutingStatus} */
  status() {
    /** @type {Record<string, { primary: ReturnType<typeof summarise>, shadow: ReturnType<typeof summarise> }>} */
    const counters = {};
    for (const [version, t] of Object.entries(this.#tallies)) counters[version] = { primary: summarise(t.primary), shadow: summarise(t.shadow) };
    return { strategy: STRATEGY, primary: this.#primary, shadow: this.#shadow, shadowPercent: this.#percent, mirrorExplicit: this.#mirrorExplicit, counters };
  }

  /**
   * The primary takes every request; shadow copies are not a share of the traffic.
   * @param {readonly RouteCandidate[]} candidates
   */
  weights(candidates) {
    const primaryReady = candidates.some((c) => c.version === this.#primary && c.ready);
    return Object.fromEntries(candidates.map((c) => [c.version, primaryReady && c.version === this.#primary ? 1 : 0]));
  }

  /** Writes the counters one last time and stops the timer. Idempotent. */
  async close() {
    if (this.#closed) return this.#writing;
    this.#closed = true;
    if (this.#timer) this.#ctx.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    if (this.#dirty) this.#persist();
    return this.#writing;
  }

  #schedulePersist() {
    this.#dirty = true;
    if (this.#timer) return;
    this.#timer = this.#ctx.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#persist();
    }, this.#persistMs);
  }

  /** Queues one write of the counters as they are now; a failed write is logged, never thrown. */
  #persist() {
    this.#dirty = false;
    const snapshot = structuredClone(this.#tallies);
    this.#writing = this.#writing
      .then(() => this.#ctx.state.set(STATE_KEY, snapshot))
      .catch((/** @type {unknown} */ err) => {
        this.#dirty = true;
        this.#ctx.logger.warn({ err }, 'shadow-mirror: could not persist the counters; they are kept in memory and retried with the next outcome');
      });
  }
}

/**
 * Reads the validated options, applying defaults, and checks what a JSON Schema cannot: that the
 * two versions are configured and differ.
 * @param {RouterContext} ctx
 */
export function resolveOptions(ctx) {
  const o = ctx.options;
  const primary = String(o['primary']);
  const shadow = String(o['shadow']);
  const where = `models.${ctx.model}.routing`;
  for (const [key, version] of /** @type {const} */ ([['primary', primary], ['shadow', shadow]])) {
    if (!ctx.versions.includes(version)) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}.${key}: version '${version}' is not configured (versions: ${ctx.versions.join(', ')})`);
    }
  }
  if (primary === shadow) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}: primary and shadow are both version '${primary}'; the shadow must be another version`);
  return {
    primary,
    shadow,
    shadowPercent: typeof o['shadowPercent'] === 'number' ? o['shadowPercent'] : DEFAULT_SHADOW_PERCENT,
    mirrorExplicit: typeof o['mirrorExplicit'] === 'boolean' ? o['mirrorExplicit'] : DEFAULT_MIRROR_EXPLICIT,
    persistIntervalMs: typeof o['persistIntervalMs'] === 'number' ? o['persistIntervalMs'] : DEFAULT_PERSIST_INTERVAL_MS,
  };
}

/**
 * The factory: one router per model whose `routing.strategy` is `shadow-mirror`.
 * @type {RouterFactory}
 */
export const shadowMirrorRouterFactory = {
  optionsSchema: OPTIONS_SCHEMA,
  async create(ctx) {
    const options = resolveOptions(ctx);
    let stored;
    try {
      stored = await ctx.state.get(STATE_KEY);
    } catch (err) {
      // counters are telemetry: an unreadable file must not keep the model from serving
      ctx.logger.warn({ err }, 'shadow-mirror: could not read the saved counters; starting from zero');
    }
    const router = new ShadowMirrorRouter(ctx, options, stored);
    ctx.logger.info({ primary: options.primary, shadow: options.shadow, shadowPercent: options.shadowPercent }, 'shadow-mirror router ready');
    return router;
  },
};

/** The plugin: what `plugins: [./plugin.js]` loads. */
export default definePlugin({
  name: 'tessera-example-shadow-router',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerRouter(STRATEGY, shadowMirrorRouterFactory);
  },
});
