import type { EndpointKind } from '../../contracts/hook.js';
import { TesseraError } from '../../errors.js';
import type { Principal, Scope } from '../principal.js';

/**
 * Which scopes let a principal use an endpoint kind (any one of them is enough); `null`: no
 * credential needed; `[]`: any valid credential. Health probes are always open (a probe has no
 * key), and so are a page's static assets (`ui`: no data in them; the page asks for a key and sends
 * it with its API calls); scrapes unless `auth.metrics` is `protected`; an unknown route needs a credential, so that
 * probing for routes without one gets 401, never 404.
 */
export function scopesFor(endpoint: EndpointKind, metrics: 'open' | 'protected'): readonly Scope[] | null {
  switch (endpoint) {
    case 'health':
    case 'ui':
      return null;
    case 'metrics':
      return metrics === 'open' ? null : ['metrics'];
    case 'infer':
      return ['infer'];
    case 'metadata':
      return ['infer', 'admin'];
    case 'admin':
      return ['admin'];
    case 'unknown':
      return [];
  }
}

/** Endpoint kinds whose `:model` URL parameter names a model the principal must be allowed. */
const MODEL_ENDPOINTS: ReadonlySet<EndpointKind> = new Set(['infer', 'metadata', 'admin']);

/** Throws 403 `TESSERA_E_AUTH_FORBIDDEN` unless `principal` holds one of `scopes`. */
export function assertScope(principal: Principal, scopes: readonly Scope[]): void {
  if (scopes.length === 0 || scopes.some((s) => principal.scopes.has(s))) return;
  const needed = scopes.join(' or ');
  throw new TesseraError('TESSERA_E_AUTH_FORBIDDEN', `the credential '${principal.id}' lacks the ${needed} scope this endpoint needs; use a credential with it`, {
    headers: { 'www-authenticate': `Bearer realm="tessera", error="insufficient_scope", scope="${scopes.join(' ')}"` },
  });
}

/** Throws 403 unless `principal` may use `model` (a principal without `models` may use every one). */
export function assertModel(principal: Principal, model: string): void {
  if (principal.models === undefined || principal.models.has(model)) return;
  throw new TesseraError('TESSERA_E_AUTH_FORBIDDEN', `the credential '${principal.id}' may not use the model '${model}'`, {
    headers: { 'www-authenticate': 'Bearer realm="tessera", error="insufficient_scope"' },
  });
}

/** The model a request's URL names, when its endpoint kind is one whose model is checked. */
export function urlModel(endpoint: EndpointKind, params: Readonly<Record<string, string>>): string | undefined {
  return MODEL_ENDPOINTS.has(endpoint) ? params.model : undefined;
}

/** Whether `principal` (undefined: auth is off) may see `model` in a listing. */
export function mayList(principal: Principal | undefined, model: string): boolean {
  return principal?.models === undefined || principal.models.has(model);
}
