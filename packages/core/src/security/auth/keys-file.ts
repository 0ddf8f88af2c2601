import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ApiKeyConfig } from '../../config/types.js';
import type { EnvRecord } from '../../config/env.js';
import { substituteEnv } from '../../config/env.js';
import { loadJson, loadYaml } from '../../config/loaders.js';
import { isRecord } from '../../config/path.js';
import { apiKeySchema } from '../../config/schema.js';
import { validateAgainstSchema } from '../../config/validate.js';
import { TesseraError, errorMessage, isTesseraError } from '../../errors.js';
import type { WatchContentOptions } from './file-watch.js';
import { watchContent } from './file-watch.js';
import type { ValidApiKey } from './options.js';
import { resolveApiKeys } from './options.js';

const KEYS_FILE_SCHEMA = { type: 'array', items: apiKeySchema };

/**
 * The keys of `auth.apiKeysFile` (a YAML or JSON list like `auth.apiKeys`, or `{apiKeys: [...]}`),
 * parsed with the config's rules: `${VAR}` substituted, validated against the same schema, every
 * key at least 16 characters, names and keys distinct from each other and from `others` (the
 * config's keys). Throws `TESSERA_E_CONFIG_INVALID`/`_PARSE`/`_ENV` naming the file, never a key.
 */
export function parseKeysFile(file: string, text: string, others: readonly ApiKeyConfig[], env: EnvRecord = process.env): ApiKeyConfig[] {
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? loadJson(file, text) : loadYaml(file, text);
  } catch (err) {
    // the loaders quote the offending line, which may hold a key: keep the position only
    const at = /^(.*:\d+:\d+): (YAML|JSON) syntax error/.exec(errorMessage(err));
    throw new TesseraError('TESSERA_E_CONFIG_PARSE', at ? `${at[1]}: ${at[2]} syntax error (the line is not shown: it may hold a key)` : `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}`);
  }
  const list = parsed === undefined ? [] : isRecord(parsed) && 'apiKeys' in parsed ? parsed.apiKeys : parsed;
  if (Array.isArray(list)) {
    // the validator shows a wrong value, and a bare string here is most likely a key
    const bare = list.findIndex((entry) => !isRecord(entry));
    if (bare !== -1) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${file}: apiKeys[${bare}]: must be an object {name, key, scopes, models?, rateLimit?} (the value is not shown: it may be a key)`);
  }
  const substituted = substituteEnv(list, env, 'apiKeys');
  const valid = validateAgainstSchema<ValidApiKey[]>(KEYS_FILE_SCHEMA, substituted, 'apiKeys', { file });
  try {
    return resolveApiKeys(valid, 'apiKeys', others);
  } catch (err) {
    throw isTesseraError(err) ? new TesseraError(err.code, `${file}: ${err.message}`) : err;
  }
}

/** Options of `KeysFile.open`. */
export interface KeysFileOptions extends WatchContentOptions {
  /** Keys of the config itself, which the file's must not repeat. */
  others: readonly ApiKeyConfig[];
  logger: Logger;
  /** Called with the file's keys after every successful re-read. */
  onChange: (keys: ApiKeyConfig[]) => void;
  env?: EnvRecord;
}

/**
 * `auth.apiKeysFile`, read at start (a file that is missing or wrong stops the server) and re-read
 * whenever it changes. A re-read that fails is logged with the file's path and the reason, and
 * the previous keys stay in force until the file is fixed.
 */
export class KeysFile {
  readonly file: string;
  /** The keys the file held when last read successfully. */
  keys: ApiKeyConfig[];
  readonly #stop: () => void;

  private constructor(file: string, text: string, keys: ApiKeyConfig[], options: KeysFileOptions) {
    this.file = file;
    this.keys = keys;
    this.#stop = watchContent(file, text, (changed) => this.#reload(changed, options), options);
  }

  /** Reads `file` now and watches it. */
  static open(file: string, options: KeysFileOptions): KeysFile {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `auth.apiKeysFile: cannot read ${file}: ${errorMessage(err)}`, { cause: err });
    }
    const keys = parseKeysFile(file, text, options.others, options.env);
    return new KeysFile(file, text, keys, options);
  }

  #reload(text: string, options: KeysFileOptions): void {
    let keys: ApiKeyConfig[];
    try {
      keys = parseKeysFile(this.file, text, options.others, options.env);
    } catch (err) {
      options.logger.error({ file: this.file, code: isTesseraError(err) ? err.code : undefined }, `auth.apiKeysFile ${this.file} is not valid, keeping the ${this.keys.length} keys read before: ${errorMessage(err)}`);
      return;
    }
    this.keys = keys;
    options.logger.info({ file: this.file, keys: keys.length }, `auth.apiKeysFile ${this.file} re-read: ${keys.length} keys`);
    options.onChange(keys);
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#stop();
  }
}
