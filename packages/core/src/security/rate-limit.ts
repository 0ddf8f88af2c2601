import rateLimitPlugin, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RateLimitConfig } from '../config/types.js';
import type { CounterMetric, MetricRegistrar } from '../contracts/metrics.js';
import type { HookRequest, RequestHook } from '../contracts/hook.js';
import { TesseraError, errorMessage } from '../errors.js';
import { principalOf } from './principal.js';

/** How long a start waits for Redis before serving with the store unreachable (it keeps reconnecting). */
const REDIS_CONNECT_TIMEOUT_MS = 2_000;

/** What the limiter of @fastify/rate-limit reads of a "request": our own key, limit and window. */
interface LimiterInput {
  routeOptions: { config: Record<string, never> };
  key: string;
  max: number;
  timeWindowMs: number;
}

interface LimitResult {
  isAllowed: boolean;
  max?: number;
  remaining?: number;
  ttl?: number;
  ttlInSeconds?: number;
  isExceeded?: boolean;
}

type Limiter = (input: LimiterInput) => Promise<LimitResult>;

/**
 * `server.rateLimit` as a request hook: @fastify/rate-limit's counting (its in-memory LRU store,
 * or its Redis store shared by replicas) run from the pipeline's admission, right after
 * authentication, so the client is its principal when it sent a credential. Health probes and
 * scrapes are never counted. Every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and
 * `RateLimit-Reset` (seconds) and `RateLimit-Policy`; a refusal is 429 with `Retry-After`.
 */
export class RateLimitHook implements RequestHook {
  readonly #config: RateLimitConfig;
  readonly #limiter: Limiter;
  readonly #logger: Logger;
  readonly #redis: Redis | undefined;
  readonly #storeErrors: CounterMetric;
  readonly #refused: CounterMetric;
  readonly #routeOptions = { config: {} as Record<string, never> };
  /** Whether the store is failing now (logged once per outage). */
  #storeDown = false;

  private constructor(config: RateLimitConfig, limiter: Limiter, logger: Logger, redis: Redis | undefined, metrics: MetricRegistrar) {
    this.#config = config;
    this.#limiter = limiter;
    this.#logger = logger;
    this.#redis = redis;
    this.#storeErrors = metrics.counter({
      name: 'tessera_rate_limit_store_errors_total',
      help: 'Rate-limit checks that failed because the shared store (server.rateLimit.redis) could not be reached',
    });
    this.#refused = metrics.counter({
      name: 'tessera_rate_limited_total',
      help: 'Requests refused with 429 by server.rateLimit, by what the client was counted as (principal: its credential; address: its IP)',
      labelNames: ['client'],
    });
  }

  /**
   * Registers @fastify/rate-limit on `app` (counting only: no route hooks of its own) and makes the
   * hook. With `redis`, connects first (bounded wait; a server whose Redis is down still starts).
   */
  static async create(app: FastifyInstance, config: RateLimitConfig, logger: Logger, metrics: MetricRegistrar): Promise<RateLimitHook> {
    const redis = config.redis ? await connectRedis(config.redis, logger) : undefined;
    await app.register(rateLimitPlugin, {
      global: false,
      max: (req: FastifyRequest) => (req as unknown as LimiterInput).max,
      timeWindow: (req: FastifyRequest) => (req as unknown as LimiterInput).timeWindowMs,
      keyGenerator: (req: FastifyRequest) => (req as unknown as LimiterInput).key,
      ...(redis ? { redis, nameSpace: config.redisNamespace } : {}),
      skipOnError: false,
    });
    const check = app.createRateLimit();
    const limiter: Limiter = (input) => check(input as unknown as FastifyRequest);
    return new RateLimitHook(config, limiter, logger, redis, metrics);
  }

  async onRequest(request: HookRequest): Promise<void> {
    if (request.endpoint === 'health' || request.endpoint === 'metrics') return;
    const principal = this.#config.by === 'auto' ? principalOf(request) : undefined;
    const own = principal?.rateLimit;
    const max = own?.max ?? this.#config.max;
    const timeWindowMs = own?.timeWindowMs ?? this.#config.timeWindowMs;
    const key = principal ? `principal:${principal.id}` : `ip:${normalizeIP(request.ip)}`;
    let result: LimitResult;
    try {
      result = await this.#limiter({ routeOptions: this.#routeOptions, key, max, timeWindowMs });
    } catch (err) {
      this.#storeFailed(err);
      if (this.#config.onStoreError === 'deny') {
        throw new TesseraError('TESSERA_E_RATE_LIMIT_UNAVAILABLE', 'the rate-limit store (server.rateLimit.redis) cannot be reached, and server.rateLimit.onStoreError is deny; retry later', {
          headers: { 'retry-after': '1' },
        });
      }
      return;
    }
    this.#storeUp();
    if (result.isAllowed) return;
    const reset = String(result.ttlInSeconds ?? Math.ceil(timeWindowMs / 1000));
    const policy = `${max};w=${Math.ceil(timeWindowMs / 1000)}`;
    if (result.isExceeded) {
      this.#refused.inc({ client: principal ? 'principal' : 'address' });
      throw new TesseraError('TESSERA_E_RATE_LIMITED', `rate limit exceeded: at most ${max} requests per ${formatWindow(timeWindowMs)} for this ${principal ? 'credential' : 'client address'}; retry in ${reset} s`, {
        headers: { 'retry-after': reset, 'ratelimit-limit': String(max), 'ratelimit-remaining': '0', 'ratelimit-reset': reset, 'ratelimit-policy': policy },
      });
    }
    request.setResponseHeader('ratelimit-limit', String(max));
    request.setResponseHeader('ratelimit-remaining', String(result.remaining ?? 0));
    request.setResponseHeader('ratelimit-reset', reset);
    request.setResponseHeader('ratelimit-policy', policy);
  }

  async close(): Promise<void> {
    if (!this.#redis) return;
    await this.#redis.quit().catch(() => this.#redis!.disconnect());
  }

  #storeFailed(err: unknown): void {
    this.#storeErrors.inc();
    if (this.#storeDown) return;
    this.#storeDown = true;
    const what = this.#config.onStoreError === 'deny' ? 'answering 503 until it is back' : 'letting requests through uncounted until it is back';
    this.#logger.error({ err: redactedError(err) }, `the rate-limit store (server.rateLimit.redis) failed: ${errorMessage(err)}; ${what}`);
  }

  #storeUp(): void {
    if (!this.#storeDown) return;
    this.#storeDown = false;
    this.#logger.info('the rate-limit store (server.rateLimit.redis) answers again');
  }
}

/** A Redis client tuned for rate limiting: fail fast (no offline queue, one try), reconnect in the background. */
async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  // ioredis reports every failed reconnect as an `error` event: the hook logs the outage once
  redis.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${REDIS_CONNECT_TIMEOUT_MS} ms`)), REDIS_CONNECT_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    logger.error(`server.rateLimit.redis (${redactUrl(url)}) cannot be reached: ${errorMessage(err)}; serving anyway, and reconnecting`);
  } finally {
    clearTimeout(timer);
  }
  return redis;
}

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return 'an unparsable URL';
  }
}

/** ioredis errors may carry the command's arguments (our keys hold principal ids, never secrets), kept short. */
function redactedError(err: unknown): { message: string } {
  return { message: errorMessage(err) };
}

function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1_000 === 0) return `${ms / 1_000} s`;
  return `${ms} ms`;
}
