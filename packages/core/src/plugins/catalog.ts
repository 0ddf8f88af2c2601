import type { Container } from 'inversify';
import { BACKEND } from '../contracts/backend.js';
import { BATCHER_FACTORY } from '../contracts/batcher.js';
import { EXPORTER } from '../contracts/exporter.js';
import { REQUEST_HOOK_FACTORY } from '../contracts/hook.js';
import { PROCESSOR_FACTORY } from '../contracts/processor.js';
import { ROUTER_FACTORY } from '../contracts/router.js';
import { closestMatch } from '../config/suggest.js';
import { TesseraError } from '../errors.js';

/** The kinds of things plugins register by name, each under its DI token. */
export const PLUGIN_KINDS = {
  backend: { token: BACKEND, what: 'backend', key: 'backend' },
  batcher: { token: BATCHER_FACTORY, what: 'batcher', key: 'batching.batcher' },
  router: { token: ROUTER_FACTORY, what: 'routing strategy', key: 'routing.strategy' },
  processor: { token: PROCESSOR_FACTORY, what: 'processor', key: 'processor' },
  hook: { token: REQUEST_HOOK_FACTORY, what: 'request hook', key: 'hook' },
  exporter: { token: EXPORTER, what: 'exporter', key: 'exporter' },
} as const;

export type PluginKind = keyof typeof PLUGIN_KINDS;

/**
 * What is registered under each kind, by name: the DI container holds the values (named bindings)
 * and this keeps the names, which inversify 8 cannot list, for "did you mean" and warnings.
 */
export class Catalog {
  readonly #container: Container;
  readonly #names = new Map<PluginKind, Map<string, string>>();

  constructor(container: Container) {
    this.#container = container;
  }

  /** Binds `value` under `kind` and `name`; throws naming both owners when the name is taken. */
  bind(kind: PluginKind, name: string, value: unknown, owner: string): void {
    const names = this.#names.get(kind) ?? new Map<string, string>();
    this.#names.set(kind, names);
    const previous = names.get(name);
    if (previous !== undefined) {
      throw new TesseraError('TESSERA_E_PLUGIN_REGISTER', `${PLUGIN_KINDS[kind].what} '${name}' is registered twice (by ${previous} and ${owner}); remove one of the plugins`);
    }
    names.set(name, owner);
    this.#container.bind(PLUGIN_KINDS[kind].token).toConstantValue(value).whenNamed(name);
  }

  names(kind: PluginKind): string[] {
    return [...(this.#names.get(kind)?.keys() ?? [])];
  }

  /** Who registered a name (`the core` or a plugin's name). */
  owner(kind: PluginKind, name: string): string | undefined {
    return this.#names.get(kind)?.get(name);
  }

  has(kind: PluginKind, name: string): boolean {
    return this.#names.get(kind)?.has(name) === true;
  }

  /**
   * The value registered under `name`, or a TesseraError naming the config path, what is
   * registered, the closest name ("did you mean") and `hint` (what to install).
   */
  get<T>(kind: PluginKind, name: string, at: { path: string; file?: string; hint?: string; code?: 'TESSERA_E_CONFIG_INVALID' | 'TESSERA_E_BACKEND_UNKNOWN' }): T {
    if (!this.has(kind, name)) {
      const known = this.names(kind);
      const guess = closestMatch(name, known);
      const what = PLUGIN_KINDS[kind].what;
      const registered = known.length > 0 ? ` (registered: ${known.join(', ')})` : ` (none is registered)`;
      const hint = guess ? ` — did you mean "${guess}"?` : `; ${at.hint ?? `install and list the plugin that provides it under \`plugins:\``}`;
      throw new TesseraError(at.code ?? 'TESSERA_E_CONFIG_INVALID', `${at.file ? `${at.file}: ` : ''}${at.path}: unknown ${what} '${name}'${registered}${hint}`);
    }
    return this.#container.get<T>(PLUGIN_KINDS[kind].token, { name });
  }
}
