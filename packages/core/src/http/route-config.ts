import type { EndpointKind } from '../contracts/hook.js';

// Public (re-exported by the package index): a route a plugin adds says what it is for with
// `config: { endpoint: 'ui' | 'infer' | … }` and type-checks against @tessera/core's types alone.
declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the endpoint is for (hooks decide by it); default `admin`. */
    endpoint?: EndpointKind;
  }
}
