/** Where spans are posted: OTLP/HTTP URLs from the config or the `OTEL_EXPORTER_OTLP_*` variables. */
import type { Env } from './env.js';
import { readEnv } from './env.js';

/** The OTLP/HTTP path of the traces signal, appended to base endpoints. */
export const TRACES_PATH = 'v1/traces';

/**
 * The OTLP/HTTP traces URL for a base endpoint: `http://c:4318` → `http://c:4318/v1/traces`,
 * `http://c:4318/otlp/` → `http://c:4318/otlp/v1/traces`; a URL that already ends in `/v1/traces`
 * is kept as it is. Throws on a URL that does not parse or is not http(s).
 */
export function tracesUrl(endpoint: string): string {
  const url = parseHttpUrl(endpoint);
  if (/\/v1\/traces\/?$/.test(url.pathname)) return url.href;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${TRACES_PATH}`;
  return url.href;
}

/** Parses an http(s) URL; throws with a readable message otherwise. */
export function parseHttpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`'${text}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`'${text}' is not an http(s) URL (OTLP/HTTP; gRPC is not supported)`);
  return url;
}

/** The URL without credentials or query string, for logs. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}


/**
 * The traces URL from the environment: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is (the
 * signal-specific URL is complete), else `OTEL_EXPORTER_OTLP_ENDPOINT` as a base. An invalid value
 * is a warning and skipped. Undefined when neither gives a URL.
 */
export function endpointFromEnv(env: Env, warnings: string[]): { url: string; source: string } | undefined {
  const specific = readEnv(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) {
    try {
      return { url: parseHttpUrl(specific).href, source: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' };
    } catch (err) {
      warnings.push(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ${(err as Error).message}; it is ignored`);
    }
  }
  const base = readEnv(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base !== undefined) {
    try {
      return { url: tracesUrl(base), source: 'OTEL_EXPORTER_OTLP_ENDPOINT' };
    } catch (err) {
      warnings.push(`OTEL_EXPORTER_OTLP_ENDPOINT: ${(err as Error).message}; it is ignored`);
    }
  }
  return undefined;
}
