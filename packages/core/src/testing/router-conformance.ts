import type { RouteCandidate, RouteOutcome, RouteRequest, Router, RouterContext, RouterFactory } from '../contracts/router.js';
import type { StateStore } from '../contracts/state-store.js';
import { validateAgainstSchema } from '../config/validate.js';
import { isTesseraError } from '../errors.js';
import { silentLogger } from './silent-logger.js';
import { FakeClock } from './fake-clock.js';
import { InMemoryMetrics } from './in-memory-metrics.js';
import { MemoryStateStore } from './memory-state-store.js';
import { requireVitest } from './vitest-api.js';

/**
 * A RouterContext whose clock, metrics and state a test can drive and read. `S` is the state
 * store's type: a `MemoryStateStore` unless the test passes its own (one that fails, say).
 */
export interface TestRouterContext<S extends StateStore = MemoryStateStore> extends RouterContext {
  clock: FakeClock;
  metrics: InMemoryMetrics;
  state: S;
}

/**
 * A RouterContext for tests: a FakeClock, in-memory metrics and state, a silent logger. Override
 * any part (pass the same `state` to a second router to test a restart). `options` are validated
 * against `factory.optionsSchema` when a factory is given, as the server does (defaults filled in).
 */
export function testRouterContext<S extends StateStore = MemoryStateStore>(overrides: Partial<TestRouterContext<S>> = {}, factory?: RouterFactory): TestRouterContext<S> {
  const options = factory?.optionsSchema ? validateAgainstSchema<Record<string, unknown>>(factory.optionsSchema, structuredClone({ ...(overrides.options ?? {}) }), 'routing') : (overrides.options ?? {});
  return {
    model: 'model',
    versions: ['1', '2'],
    clock: new FakeClock(),
    logger: silentLogger(),
    metrics: new InMemoryMetrics(),
    state: new MemoryStateStore() as StateStore as S,
    ...overrides,
    options,
  };
}

/** A RouteRequest for tests. */
export function testRouteRequest(overrides: Partial<RouteRequest> = {}): RouteRequest {
  return { model: 'model', kind: 'tensor', protocol: 'v2', id: 'req-1', headers: {}, ...overrides };
}

/** A RouteOutcome for tests (a 200 tensor request of version `1`, 5 ms). */
export function testRouteOutcome(overrides: Partial<RouteOutcome> = {}): RouteOutcome {
  return { id: 'req-1', model: 'model', version: '1', explicit: false, shadow: false, kind: 'tensor', status: 200, statusClass: 'ok', durationMs: 5, at: 0, ...overrides };
}

export interface RouterConformanceOptions {
  /** Shown in the top-level `describe`. */
  name: string;
  factory: RouterFactory;
  /** The `routing` options (besides `strategy`) the router is created with. */
  options?: Record<string, unknown>;
  /** Configured versions, oldest first (default `['1', '2']`). */
  versions?: string[];
}

/**
 * The contract every router keeps, as vitest tests: `select` only ever returns a ready candidate
 * (or throws a TesseraError when none is), under any headers; `observe` takes every kind of outcome
 * (ok, 4xx, 5xx, shadows, generations, unknown versions) without throwing; `status()` is
 * JSON-serialisable and names its strategy; `weights`, when present, are shares in [0, 1] that sum
 * to 1 over ready versions (or are all 0); `close` is idempotent. Run it in a spec file:
 * `describeRouterConformance({ name: 'canary', factory: canaryRouterFactory, options: {...} })`.
 */
export function describeRouterConformance(options: RouterConformanceOptions): void {
  const { describe, it, expect, beforeEach, afterEach } = requireVitest('describeRouterConformance');
  const versions = options.versions ?? ['1', '2'];
  const all = (ready: boolean): RouteCandidate[] => versions.map((version) => ({ version, ready }));

  describe(`router conformance: ${options.name}`, () => {
    let router: Router;
    let ctx: RouterContext;
    beforeEach(async () => {
      ctx = testRouterContext({ options: options.options ?? {}, versions }, options.factory);
      router = await options.factory.create(ctx);
    });
    afterEach(async () => {
      await router.close?.();
    });

    it('should pick a ready version when every version is ready, for any headers', () => {
      for (let i = 0; i < 200; i++) {
        const target = router.select(testRouteRequest({ id: `r${i}`, headers: { 'x-user': `u${i}`, cookie: `c=${i}` } }), all(true));
        expect(versions).toContain(target.version);
        for (const s of target.shadow ?? []) expect(versions).toContain(s);
      }
    });

    it('should never pick a version that is not ready', () => {
      for (const ready of versions) {
        const candidates = versions.map((version) => ({ version, ready: version === ready }));
        for (let i = 0; i < 50; i++) {
          let picked: string | undefined;
          try {
            picked = router.select(testRouteRequest({ id: `r${i}`, headers: { 'x-user': `u${i}` } }), candidates).version;
          } catch (err) {
            // refusing is allowed (e.g. a canary router that will not send the baseline's traffic elsewhere), with a TesseraError
            expect(isTesseraError(err)).toBe(true);
            continue;
          }
          expect(picked).toBe(ready);
        }
      }
    });

    it('should throw a TesseraError when no version is ready', () => {
      let thrown: unknown;
      try {
        router.select(testRouteRequest(), all(false));
      } catch (err) {
        thrown = err;
      }
      expect(isTesseraError(thrown), 'select must throw a TesseraError (usually TESSERA_E_MODEL_NOT_READY) when no candidate is ready').toBe(true);
    });

    it('should take every kind of outcome without throwing', () => {
      const outcomes: RouteOutcome[] = [];
      for (const version of [...versions, 'unknown']) {
        for (const [status, statusClass] of [[200, 'ok'], [400, 'client_error'], [499, 'client_error'], [500, 'server_error'], [503, 'server_error']] as const) {
          for (const shadow of [false, true]) {
            outcomes.push(testRouteOutcome({ version, status, statusClass, shadow, kind: 'tensor', target: { version } }));
            outcomes.push(testRouteOutcome({ version, status, statusClass, shadow, kind: 'generate', ttftMs: 20, tpotMs: 5, explicit: true }));
          }
        }
      }
      for (const outcome of outcomes) expect(() => router.observe(outcome)).not.toThrow();
    });

    it('should report a JSON-serialisable status that names its strategy', () => {
      const status = router.status();
      expect(typeof status.strategy).toBe('string');
      expect(JSON.parse(JSON.stringify(status))).toEqual(status);
    });

    it('should give weights in [0, 1] that sum to 1 over ready versions (when it reports weights)', () => {
      if (!router.weights) return;
      const weights = router.weights(all(true));
      const values = Object.values(weights);
      for (const w of values) {
        expect(w).toBeGreaterThanOrEqual(0);
        expect(w).toBeLessThanOrEqual(1);
      }
      expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      const none = router.weights(all(false));
      expect(Object.values(none).every((w) => w === 0)).toBe(true);
    });

    it('should close more than once', async () => {
      await router.close?.();
      await router.close?.();
    });
  });
}
