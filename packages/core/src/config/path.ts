/**
 * Config paths as people read them: `models.affine.batching.maxBatchSize`, `plugins[0]`,
 * `models["gpt-4.1"].path`. Every config error starts with one.
 */

/** Keys printed after a dot; anything else (dots, spaces, quotes) is printed as `["key"]`. */
const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/;

/** Label used when a problem concerns the whole config. */
export const ROOT_LABEL = '(root)';

/** Appends an object key or an array index to a config path. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (!PLAIN_KEY.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** The path for display: the root has a name. */
export function displayPath(path: string): string {
  return path === '' ? ROOT_LABEL : path;
}

/**
 * Turns a JSON pointer (ajv's `instancePath`) into a config path. Walks `data` alongside, because a
 * pointer does not say whether `/1` is an array index or an object key (version labels are digits).
 */
export function pointerToPath(base: string, pointer: string, data: unknown): string {
  if (pointer === '') return base;
  let path = base;
  let current: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      path = joinPath(path, Number(segment));
      current = current[Number(segment)];
    } else {
      path = joinPath(path, segment);
      current = isRecord(current) ? current[segment] : undefined;
    }
  }
  return path;
}

/** A value as it appears in an error message: JSON, cut to `max` characters. */
export function renderValue(value: unknown, max = 60): string {
  let text: string;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'function') text = '[function]';
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'symbol') text = value.toString();
  else if (typeof value === 'number' && !Number.isFinite(value)) text = `${value}`;
  else {
    try {
      text = JSON.stringify(value) ?? 'undefined';
    } catch {
      text = '[unserialisable value]'; // a cycle, in a JS config
    }
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One problem found in a config: where, and what is wrong (without the path). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/**
 * The message of a config error: one line per problem, each `file: path: message` (the file is
 * omitted for configs given as objects; a function names each problem's own file, for overlays).
 * Duplicate lines are dropped.
 */
export function formatIssues(issues: readonly ConfigIssue[], file?: string | ((configPath: string) => string | undefined)): string {
  const prefixOf = (at: string): string => {
    const name = typeof file === 'function' ? file(at) : file;
    return name ? `${name}: ` : '';
  };
  const lines = issues.map((issue) => `${prefixOf(issue.path)}${displayPath(issue.path)}: ${issue.message}`);
  return [...new Set(lines)].join('\n');
}

/** A plain object (not an array, class instance or null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Sets an own enumerable property, also for the key `__proto__` (plain assignment would set the prototype). */
export function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
