/** The environment the config is resolved against (`process.env` by default). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Reads an environment variable; empty or blank values count as unset (OpenTelemetry spec). */
export function readEnv(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Parses `key1=value1,key2=value2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS), values
 * percent-decoded. On a malformed entry the whole variable is discarded, as the spec asks; the
 * message names the variable but never its value (headers carry secrets).
 */
export function parseKeyValueList(text: string, variable: string, warnings: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    if (key === '') {
      warnings.push(`${variable} is not a list of key=value pairs separated by commas; it is ignored`);
      return {};
    }
    try {
      result[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warnings.push(`${variable}: the value of '${key}' is not valid percent-encoding; the variable is ignored`);
      return {};
    }
  }
  return result;
}

/** A positive integer variable (`OTEL_BSP_*`, `*_TIMEOUT`); anything else is a warning and unset. */
export function positiveIntFromEnv(env: Env, variable: string, warnings: string[]): number | undefined {
  const raw = readEnv(env, variable);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    warnings.push(`${variable}=${raw} is not a positive integer; it is ignored`);
    return undefined;
  }
  return Number(raw);
}
