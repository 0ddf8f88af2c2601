import { TesseraError } from '../errors.js';
import { type ConfigIssue, defineKey, formatIssues, isRecord, joinPath } from './path.js';

/** Environment variables, as in `process.env`. */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `NAME` or `NAME:-default` inside `${…}`. */
const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Replaces environment references in every string of a config tree (values only, never keys):
 *
 * - `${VAR}`: the variable's value; an unset variable is an error (an empty one gives `''`);
 * - `${VAR:-default}`: the default when the variable is unset or empty; the default may itself
 *   contain references (`${A:-${B:-x}}`);
 * - `$${`: a literal `${` (so `$${VAR}` gives `${VAR}`).
 *
 * Values of variables are inserted as they are, never expanded again. Returns a copy of plain
 * objects and arrays; other objects (class instances in a JS config) are kept as they are. Throws
 * one TesseraError (`TESSERA_E_CONFIG_ENV`) listing every unset variable with its config path.
 */
export function substituteEnv<T>(value: T, env: EnvRecord = process.env, basePath = ''): T {
  const issues: ConfigIssue[] = [];
  const result = substituteEnvCollect(value, env, basePath, issues);
  if (issues.length > 0) throw new TesseraError('TESSERA_E_CONFIG_ENV', formatIssues(issues));
  return result as T;
}

/** As `substituteEnv`, collecting problems in `issues` instead of throwing. */
export function substituteEnvCollect(value: unknown, env: EnvRecord, path: string, issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') return substituteString(value, env, path, issues);
  if (Array.isArray(value)) return value.map((item, index) => substituteEnvCollect(item, env, joinPath(path, index), issues));
  if (isRecord(value)) {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) defineKey(copy, key, substituteEnvCollect(value[key], env, joinPath(path, key), issues));
    return copy;
  }
  return value;
}

function substituteString(text: string, env: EnvRecord, path: string, issues: ConfigIssue[]): string {
  if (!text.includes('${')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (text.startsWith('${', i)) {
      const end = closingBrace(text, i + 2);
      if (end < 0) {
        issues.push({ path, message: `unclosed environment reference in ${JSON.stringify(text)}: "\${" needs a matching "}" (write $\${ for a literal \${)` });
        return text;
      }
      out += resolveReference(text.slice(i + 2, end), env, path, issues);
      i = end + 1;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return out;
}

/** Index of the `}` that closes a `${` whose body starts at `from`, counting nested `${…}`. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text.startsWith('${', i)) {
      depth += 1;
      i += 1;
    } else if (text[i] === '}') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function resolveReference(body: string, env: EnvRecord, path: string, issues: ConfigIssue[]): string {
  const match = REFERENCE.exec(body);
  if (!match) {
    const name = body.split(/[:}]/)[0] ?? '';
    const why = NAME.test(name)
      ? 'after the name only ":-default" may follow'
      : 'a name is letters, digits and "_", not starting with a digit';
    issues.push({ path, message: `invalid environment reference \${${body}}: ${why} (write $\${ for a literal \${)` });
    return '';
  }
  const name = match[1]!;
  const fallback = match[2];
  const value = env[name];
  if (fallback === undefined) {
    if (value !== undefined) return value;
    issues.push({ path, message: `environment variable ${name} is not set (use \${${name}:-default} to give a default)` });
    return '';
  }
  // Shell semantics of `:-`: an empty variable also takes the default.
  if (value !== undefined && value !== '') return value;
  return substituteString(fallback, env, path, issues);
}
