import type { Logger } from 'pino';
import type { AuthConfig } from '../../config/types.js';
import type { HookRequest, InferHookContext, RequestHook } from '../../contracts/hook.js';
import type { CounterMetric, MetricRegistrar } from '../../contracts/metrics.js';
import { TesseraError, isTesseraError } from '../../errors.js';
import type { Principal } from '../principal.js';
import { PRINCIPAL, principalOf } from '../principal.js';
import { assertModel, assertScope, scopesFor, urlModel } from './access.js';
import { credentialOf, looksLikeJwt } from './credentials.js';
import { INVALID_TOKEN_HEADERS, JwtVerifier } from './jwt-verifier.js';
import { ApiKeySet } from './key-set.js';
import { KeysFile } from './keys-file.js';

const HOW = 'send Authorization: Bearer <key or token>, or x-api-key: <key>';
const CHALLENGE = { 'www-authenticate': 'Bearer realm="tessera"' };

/** Why a request was refused, as `tessera_auth_refused_total` counts it. */
type Refusal = 'missing' | 'invalid' | 'forbidden' | 'unavailable';

/**
 * The core's authentication (`auth`), the first request hook: finds the request's principal (an
 * API key of the config or the keys file, or a verified JWT), leaves it in `locals` under
 * `PRINCIPAL` for later hooks (rate limits, audit), and refuses what the principal may not do —
 * 401 without a valid credential, 403 without the endpoint kind's scope or for a model it may not
 * use (the URL's model in `onRequest`; the model a serving request names, in the URL or the body
 * — `/v1/predict`, OpenAI — in `admitModel`, which the pipeline calls before it looks the model
 * up, and again in `preInfer`). Never logs, echoes or counts a credential.
 */
export class AuthHook implements RequestHook {
  readonly #config: AuthConfig;
  readonly #keys: ApiKeySet;
  readonly #keysFile: KeysFile | undefined;
  readonly #jwt: JwtVerifier | undefined;
  readonly #refused: CounterMetric;

  private constructor(config: AuthConfig, keys: ApiKeySet, keysFile: KeysFile | undefined, jwt: JwtVerifier | undefined, metrics: MetricRegistrar) {
    this.#config = config;
    this.#keys = keys;
    this.#keysFile = keysFile;
    this.#jwt = jwt;
    this.#refused = metrics.counter({
      name: 'tessera_auth_refused_total',
      help: 'Requests refused by auth: missing (no credential, 401), invalid (unknown key or bad token, 401), forbidden (scope or model, 403), unavailable (JWKS unreachable, 503)',
      labelNames: ['reason'],
    });
  }

  /** Reads the keys file and the JWKS (a config error when either is wrong) and starts watching them. */
  static async create(config: AuthConfig, logger: Logger, metrics: MetricRegistrar): Promise<AuthHook> {
    const keys = new ApiKeySet(config.apiKeys);
    let keysFile: KeysFile | undefined;
    if (config.apiKeysFile !== undefined) {
      keysFile = KeysFile.open(config.apiKeysFile, { others: config.apiKeys, logger, onChange: (fileKeys) => keys.replace([...config.apiKeys, ...fileKeys]) });
      keys.replace([...config.apiKeys, ...keysFile.keys]);
    }
    let jwt: JwtVerifier | undefined;
    try {
      jwt = config.jwt ? await JwtVerifier.create(config.jwt, logger) : undefined;
    } catch (err) {
      keysFile?.close();
      throw err;
    }
    return new AuthHook(config, keys, keysFile, jwt, metrics);
  }

  /** Whether scrapes need the `metrics` scope (`auth.metrics: protected`). */
  get metricsProtected(): boolean {
    return this.#config.metrics === 'protected';
  }

  async onRequest(request: HookRequest): Promise<void> {
    const scopes = scopesFor(request.endpoint, this.#config.metrics);
    if (scopes === null) return;
    const principal = await this.authenticate(request.headers);
    // set before the checks below: a later hook's onResponse (audit) sees who was refused
    request.locals.set(PRINCIPAL, principal);
    this.#check(() => {
      assertScope(principal, scopes);
      const model = urlModel(request.endpoint, request.params);
      if (model !== undefined) assertModel(principal, model);
    });
  }

  /**
   * The pipeline's check of the model a serving request names (in the URL or the body), before
   * the model is looked up: a caller refused it learns neither whether it exists nor whether it
   * is ready (`preInfer` would run after routing, which answers 404/503 first).
   */
  admitModel(request: Pick<HookRequest, 'locals'>, model: string): void {
    const principal = principalOf(request);
    if (principal) this.#check(() => assertModel(principal, model));
  }

  /** The routed model, again (defence in depth: the pipeline's `admitModel` checked the name it was given). */
  preInfer(context: InferHookContext): void {
    this.admitModel(context, context.model);
  }

  /**
   * The principal of a request's credential. Throws 401 `TESSERA_E_AUTH_REQUIRED` without one,
   * `TESSERA_E_AUTH_INVALID` for an unknown key or a bad token, 503 when a token's keys cannot be
   * fetched. Also used by the `server.metricsPort` listener.
   */
  async authenticate(headers: HookRequest['headers']): Promise<Principal> {
    const credential = credentialOf(headers);
    if (credential.kind === 'none') throw this.#refuse('missing', new TesseraError('TESSERA_E_AUTH_REQUIRED', `this endpoint needs a credential: ${HOW}`, { headers: CHALLENGE }));
    if (credential.kind === 'unsupported') throw this.#refuse('missing', new TesseraError('TESSERA_E_AUTH_REQUIRED', `the Authorization scheme is not supported: ${HOW}`, { headers: CHALLENGE }));
    if (credential.kind === 'bearer' && this.#jwt && looksLikeJwt(credential.value)) {
      try {
        return await this.#jwt.verify(credential.value);
      } catch (err) {
        throw this.#refuse(isTesseraError(err) && err.status === 503 ? 'unavailable' : 'invalid', err);
      }
    }
    const principal = this.#keys.match(credential.value);
    if (principal) return principal;
    throw this.#refuse('invalid', new TesseraError('TESSERA_E_AUTH_INVALID', `the API key is not valid for this server: ${HOW} with a key you were given`, { headers: INVALID_TOKEN_HEADERS }));
  }

  /** A scrape of the `server.metricsPort` listener: throws unless its credential has the `metrics` scope. */
  async checkScrape(headers: HookRequest['headers']): Promise<void> {
    const principal = await this.authenticate(headers);
    this.#check(() => assertScope(principal, ['metrics']));
  }

  /** Stops watching the keys file and the JWKS file. Idempotent. */
  async close(): Promise<void> {
    this.#keysFile?.close();
    this.#jwt?.close();
  }

  #check(run: () => void): void {
    try {
      run();
    } catch (err) {
      throw this.#refuse('forbidden', err);
    }
  }

  #refuse(reason: Refusal, err: unknown): unknown {
    this.#refused.inc({ reason });
    return err;
  }
}
