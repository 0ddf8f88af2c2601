import type { Container } from 'inversify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Backend, JSONSchema } from '../contracts/backend.js';
import type { BatcherFactory } from '../contracts/batcher.js';
import type { Exporter, ExporterFactory } from '../contracts/exporter.js';
import type { RequestHookFactory } from '../contracts/hook.js';
import type { ProcessorFactory } from '../contracts/processor.js';
import type { RouterFactory } from '../contracts/router.js';
import type { DeclaredErrorCodes, ErrorCodeInfo } from '../errors.js';

/** Marks values made by `definePlugin`; `Symbol.for` so that the brand survives duplicated installs. */
export const PLUGIN_BRAND: unique symbol = Symbol.for('@tessera/core/plugin') as never;

/**
 * What a plugin's `register` receives. Every `register*` binds into the DI container by name; a
 * name registered twice (by two plugins, or by a plugin and the core) stops the server naming both.
 * The config chooses what runs: `backend:` / `batching.batcher:` / `routing.strategy:` per model,
 * `preprocess:` / `postprocess:` per model, `hooks:` and `exporters:` at the root.
 */
export interface PluginContext<C = unknown> {
  /** The plugin's config section (the root key `configKey`), validated against `configSchema`. */
  readonly config: C;
  /** The server's inversify container, for plugins that bind and share services of their own. */
  readonly container: Container;
  readonly logger: Logger;
  /** The @tessera/core version running the plugin. */
  readonly coreVersion: string;
  /** Folder of the config file; relative paths in plugin config resolve against it. */
  readonly configDir: string;
  /** A backend, chosen per model by `backend: <name>`. */
  registerBackend(name: string, backend: Backend): void;
  /** A batcher, chosen per model by `batching.batcher: <name>`. */
  registerBatcher(name: string, factory: BatcherFactory): void;
  /** A routing strategy, chosen per model by `routing.strategy: <name>`. */
  registerRouter(name: string, factory: RouterFactory): void;
  /** A pre/post-processing step, used per model in `preprocess:` / `postprocess:`. */
  registerProcessor(name: string, factory: ProcessorFactory): void;
  /** A request hook, enabled by listing it under `hooks:`. */
  registerHook(name: string, factory: RequestHookFactory): void;
  /** An exporter (or its factory), enabled by listing it under `exporters:`. */
  registerExporter(name: string, exporter: Exporter | ExporterFactory): void;
  /**
   * Adds HTTP routes to the main server (called before it listens). Their endpoint kind is `admin`
   * unless a route sets `config: { endpoint: 'infer' | 'metadata' | … }`; request hooks run for them.
   */
  addRoutes(routes: (app: FastifyInstance) => void | Promise<void>): void;
  /** Runs at shutdown, after models unload, in reverse registration order. */
  onClose(hook: () => Promise<void>): void;
}

export interface PluginDefinition<C = unknown> {
  /** Package name, e.g. `@tessera/backend-onnxruntime`. */
  name: string;
  version: string;
  /** semver range of @tessera/core this plugin works with, e.g. `^0.1.0`. */
  core: string;
  /** Root key of the config file this plugin reads (e.g. `tracing`); absent when it has none. */
  configKey?: string;
  /** JSON Schema of that section; the loader validates before `register`. */
  configSchema?: JSONSchema;
  /**
   * The error codes the plugin throws, made with `defineErrorCodes` (namespaced: `ACME_E_...`;
   * `TESSERA_E_` is for `@tessera/` packages). The loader checks them against every other plugin's.
   */
  errorCodes?: Pick<DeclaredErrorCodes<Record<string, ErrorCodeInfo>>, 'codes'>;
  register(ctx: PluginContext<C>): void | Promise<void>;
}

export interface TesseraPlugin<C = unknown> extends PluginDefinition<C> {
  readonly [PLUGIN_BRAND]: true;
}

/**
 * Declares a Tessera plugin. A plugin package default-exports the result:
 *
 * ```ts
 * export default definePlugin({
 *   name: '@acme/backend-foo', version: '1.0.0', core: '^0.1.0',
 *   register(ctx) { ctx.registerBackend('foo', new FooBackend()); },
 * });
 * ```
 */
export function definePlugin<C = unknown>(definition: PluginDefinition<C>): TesseraPlugin<C> {
  return Object.freeze({ ...definition, [PLUGIN_BRAND]: true as const });
}

/** Whether a value was made by `definePlugin` (any copy of the core). */
export function isTesseraPlugin(value: unknown): value is TesseraPlugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_BRAND] === true;
}
