import type { Logger } from 'pino';
import type { HookRequest, HookResponse, InferHookContext, RequestHook } from '../contracts/hook.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';

/** A configured hook and its name (for messages). */
export interface NamedHook {
  name: string;
  hook: RequestHook;
}

/**
 * The configured request hooks, in order, split by stage so that a stage nobody hooks costs one
 * length check.
 */
export class HookChain {
  readonly #onRequest: NamedHook[];
  readonly #preInfer: NamedHook[];
  readonly #onResponse: NamedHook[];
  readonly #all: NamedHook[];
  readonly #logger: Logger;
  readonly #reported = new Set<string>();

  constructor(hooks: readonly NamedHook[], logger: Logger) {
    this.#all = [...hooks];
    this.#onRequest = hooks.filter((h) => typeof h.hook.onRequest === 'function');
    this.#preInfer = hooks.filter((h) => typeof h.hook.preInfer === 'function');
    this.#onResponse = hooks.filter((h) => typeof h.hook.onResponse === 'function');
    this.#logger = logger;
  }

  get hasOnRequest(): boolean {
    return this.#onRequest.length > 0;
  }

  get hasPreInfer(): boolean {
    return this.#preInfer.length > 0;
  }

  get hasOnResponse(): boolean {
    return this.#onResponse.length > 0;
  }

  /** Runs the onRequest hooks; the first refusal (a thrown TesseraError) answers the request. */
  async onRequest(request: HookRequest): Promise<void> {
    for (const h of this.#onRequest) await guard(h, 'onRequest', () => h.hook.onRequest!(request));
  }

  async preInfer(context: InferHookContext): Promise<void> {
    for (const h of this.#preInfer) await guard(h, 'preInfer', () => h.hook.preInfer!(context));
  }

  /** Runs the onResponse hooks; their failures are logged once per hook and never reach the client. */
  onResponse(response: HookResponse): void {
    for (const h of this.#onResponse) {
      const report = (err: unknown): void => {
        if (this.#reported.has(h.name)) return;
        this.#reported.add(h.name);
        this.#logger.error({ err }, `request hook '${h.name}' failed in onResponse (further failures of this hook are not logged): ${errorMessage(err)}`);
      };
      try {
        const result = h.hook.onResponse!(response);
        if (result && typeof (result).then === 'function') (result).catch(report);
      } catch (err) {
        report(err);
      }
    }
  }

  /** Closes every hook, last first. */
  async close(): Promise<void> {
    for (const h of [...this.#all].reverse()) {
      try {
        await h.hook.close?.();
      } catch (err) {
        this.#logger.warn({ err }, `request hook '${h.name}' failed to close: ${errorMessage(err)}`);
      }
    }
  }
}

async function guard(h: NamedHook, stage: string, run: () => void | Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (isTesseraError(err)) throw err;
    throw new TesseraError('TESSERA_E_HOOK_FAILED', `request hook '${h.name}' failed in ${stage}: ${errorMessage(err)}`, { cause: err });
  }
}
