import type { RouteCandidate, RouteRequest, RouteTarget, Router, RouterFactory, RoutingStatus } from '../contracts/router.js';
import { TesseraError } from '../errors.js';

/** Compares version labels numerically ('10' after '9'). */
export function compareVersions(a: string, b: string): number {
  return Number(a) - Number(b);
}

/**
 * The default router: the newest ready version (KServe/Triton's "latest" policy). A request that
 * names its version is served by that version by the pipeline itself; `select` still honours a
 * `version` for callers that ask it directly.
 */
export class LatestRouter implements Router {
  readonly #model: string;

  constructor(model: string) {
    this.#model = model;
  }

  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget {
    if (request.version !== undefined) {
      const c = candidates.find((x) => x.version === request.version);
      if (!c) {
        const known = candidates.map((x) => x.version).join(', ');
        throw new TesseraError('TESSERA_E_MODEL_VERSION_NOT_FOUND', `model '${this.#model}' has no version '${request.version}' (versions: ${known})`);
      }
      if (!c.ready) {
        throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${this.#model}' version ${c.version} is not ready`, { headers: { 'retry-after': '1' } });
      }
      return { version: c.version };
    }
    let best: RouteCandidate | undefined;
    for (const c of candidates) if (c.ready && (!best || compareVersions(c.version, best.version) > 0)) best = c;
    if (!best) {
      throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${this.#model}' has no ready version`, { headers: { 'retry-after': '1' } });
    }
    return { version: best.version };
  }

  observe(): void {}

  status(): RoutingStatus {
    return { strategy: 'latest' };
  }

  /** All new traffic goes to the newest ready version. */
  weights(candidates: readonly RouteCandidate[]): Record<string, number> {
    const out: Record<string, number> = {};
    let best: RouteCandidate | undefined;
    for (const c of candidates) {
      out[c.version] = 0;
      if (c.ready && (!best || compareVersions(c.version, best.version) > 0)) best = c;
    }
    if (best) out[best.version] = 1;
    return out;
  }
}

/** The built-in `latest` routing strategy. */
export const latestRouterFactory: RouterFactory = {
  optionsSchema: { type: 'object', properties: {}, additionalProperties: false },
  create: (ctx) => new LatestRouter(ctx.model),
};
