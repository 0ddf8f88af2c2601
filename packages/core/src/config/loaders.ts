import path from 'node:path';
import { realpath, stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { defaultLoaders, type Loader } from 'cosmiconfig';
import { parseDocument } from 'yaml';
import { TesseraError, errorMessage } from '../errors.js';
import type { EnvRecord } from './env.js';
import type { ConfigFunctionContext } from './types.js';

/**
 * cosmiconfig loaders for Tessera: YAML through the `yaml` package (YAML 1.2, merge keys, errors
 * with line and column), JSON with the position of a syntax error, and JS/TS modules whose default
 * export may be a (possibly async) function. Each throws a TesseraError (`TESSERA_E_CONFIG_PARSE`).
 */
export function createLoaders(env: EnvRecord): Record<string, Loader> {
  const loadModule = moduleLoader(env);
  return {
    '.yaml': loadYaml,
    '.yml': loadYaml,
    noExt: loadYaml,
    '.json': loadJson,
    '.js': loadModule(loadFreshModule),
    '.mjs': loadModule(loadFreshModule),
    '.cjs': loadModule(defaultLoaders['.cjs']),
    '.ts': loadModule(defaultLoaders['.ts']),
  };
}

/** Extensions a config file given with `-c` may have (none: YAML, like `.tesserarc`). */
export const CONFIG_EXTENSIONS = ['.yaml', '.yml', '.json', '.js', '.mjs', '.cjs', '.ts'] as const;

function parseError(filepath: string, text: string, offsetOrLine: { offset: number } | { line: number; col: number }, message: string): TesseraError {
  const { line, col } = 'offset' in offsetOrLine ? lineAndColumn(text, offsetOrLine.offset) : offsetOrLine;
  const source = text.split(/\r?\n/)[line - 1];
  const frame = source === undefined || source.trim() === '' ? '' : `\n    ${source}\n    ${' '.repeat(Math.max(0, col - 1))}^`;
  return new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}:${line}:${col}: ${message}${frame}`);
}

function lineAndColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

/** YAML 1.2 (so `yes`/`no`/`on` stay strings), with `<<` merge keys; duplicate keys are errors. */
export function loadYaml(filepath: string, content: string): unknown {
  const doc = parseDocument(content, { merge: true, prettyErrors: true, uniqueKeys: true });
  const [error] = doc.errors;
  if (error) {
    const message = `YAML syntax error: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
    const pos = error.linePos?.[0];
    if (pos) throw parseError(filepath, content, { line: pos.line, col: pos.col }, message);
    throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: ${message}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: ${errorMessage(err)}`, { cause: err });
  }
  // A file of comments only is an empty config, as an empty file is.
  return value === null ? undefined : value;
}

/** JSON (a leading BOM is allowed); a syntax error names its line and column. */
export function loadJson(filepath: string, content: string): unknown {
  const text = content.charCodeAt(0) === 0xfeff ? content.slice(1) : content;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const found = findJsonError(text);
    if (found) throw parseError(filepath, text, { offset: found.offset }, `JSON syntax error: ${found.message}`);
    throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: JSON syntax error: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * An ES module config, imported again when the file changed (a reload): Node caches modules by
 * URL, so the URL carries the file's size and modification time. CommonJS files fall back to
 * cosmiconfig's loader.
 */
const loadFreshModule: Loader = async (filepath, content) => {
  const real = await realpath(filepath);
  const { size, mtimeMs } = await stat(real);
  try {
    return ((await import(`${pathToFileURL(real).href}?v=${size}-${mtimeMs}`)) as { default?: unknown }).default;
  } catch {
    return defaultLoaders['.js'](filepath, content);
  }
};

function moduleLoader(env: EnvRecord) {
  return (load: Loader): Loader =>
    async (filepath, content) => {
      const exported: unknown = await load(filepath, content);
      const name = path.basename(filepath);
      if (exported === undefined) {
        throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: ${name} has no default export; export the config object (or a function returning it) as the default`);
      }
      if (typeof exported !== 'function') return exported;
      const context: ConfigFunctionContext = { env, configFile: filepath, configDir: path.dirname(filepath) };
      let config: unknown;
      try {
        config = await (exported as (ctx: ConfigFunctionContext) => unknown)(context);
      } catch (err) {
        throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: the config function exported by ${name} threw: ${errorMessage(err)}`, { cause: err });
      }
      if (config === undefined || config === null) {
        throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${filepath}: the config function exported by ${name} returned ${String(config)}; it must return the config object`);
      }
      return config;
    };
}

/**
 * Finds where JSON text stops being JSON, because `JSON.parse` on Node 20 does not always say
 * (`Unexpected token '}', "{"a":}" is not valid JSON`). Returns undefined if the text is valid.
 */
export function findJsonError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  class Stop extends Error {}
  const fail = (message: string): never => {
    throw new Stop(message);
  };
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const unexpected = (what: string): never => fail(i >= text.length ? `unexpected end of input, expected ${what}` : `unexpected ${JSON.stringify(text[i])}, expected ${what}`);
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const next = text[i + 1] ?? '';
        if ('"\\/bfnrt'.includes(next) && next !== '') i += 2;
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('invalid escape in string');
        continue;
      }
      if (c < ' ') fail(c === '\n' ? 'unterminated string (a newline inside a string must be written \\n)' : 'control character in string');
      i++;
    }
    fail('unterminated string');
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const container = (close: '}' | ']'): void => {
    i++;
    skipSpace();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (close === '}') {
        if (text[i] !== '"') {
          if (text[i] === '}') fail('trailing comma before "}" (not allowed in JSON)');
          unexpected('a property name in double quotes');
        }
        string();
        skipSpace();
        if (text[i] !== ':') unexpected('":" after the property name');
        i++;
      } else if (text[i] === ']') fail('trailing comma before "]" (not allowed in JSON)');
      value();
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      unexpected(`"," or "${close}"`);
    }
  };
  const value = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') return container('}');
    if (c === '[') return container(']');
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(text)) fail('invalid number');
      i = NUMBER.lastIndex;
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    unexpected('a value');
  };
  try {
    value();
    skipSpace();
    if (i < text.length) unexpected('the end of the file');
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return { offset: i, message: err.message };
    throw err;
  }
}
