import { describe, expect, it } from 'vitest';
import type { JSONSchema } from '../contracts/backend.js';
import { TesseraError } from '../errors.js';
import { resolveConfig } from './resolve.js';
import { coerceToSchema, validateAgainstSchema } from './validate.js';
import { catchError } from './test-support.js';

/** The message lines of resolving `raw` as if it came from /srv/tessera.config.yaml. */
function problems(raw: unknown): string[] {
  try {
    resolveConfig(raw, { configFile: '/srv/tessera.config.yaml', configDir: '/srv', env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    expect((err as TesseraError).code).toBe('TESSERA_E_CONFIG_INVALID');
    return (err as TesseraError).message.split('\n').map((line) => line.replace('/srv/tessera.config.yaml: ', ''));
  }
  throw new Error('expected the config to be rejected');
}

describe('config schema errors', () => {
  describe('having a value of the wrong type', () => {
    it('should name the path, the value and the type wanted', () => {
      expect(problems({ server: { port: 'http' } })).toEqual(['server.port: must be an integer from 0 to 65535, got "http"']);
      expect(problems({ server: { exitOnModelError: 'yes' } })).toEqual(['server.exitOnModelError: must be true or false, got "yes"']);
      expect(problems({ models: { affine: { routing: [] } } })).toEqual(['models.affine.routing: must be an object (key: value), got []']);
      expect(problems({ plugins: [3] })).toEqual(['plugins[0]: must be a non-empty string, got 3']);
      expect(problems({ plugins: { a: 1 } })).toEqual(['plugins: must be a list of strings, got {"a":1}']);
    });

    it('should not treat null as 0 or false', () => {
      expect(problems({ server: { port: null } })).toEqual(['server.port: must be an integer from 0 to 65535, got null']);
    });

    it('should report a root that is not an object', () => {
      expect(problems(['models'])).toEqual(['(root): must be an object (key: value), got ["models"]']);
    });

    it('should cut long values', () => {
      const [line] = problems({ server: { host: ['x'.repeat(200)] } });
      expect(line).toMatch(/^server\.host: must be a non-empty string, got \["x{50,}…$/);
      expect(line!.length).toBeLessThan(120);
    });
  });

  describe('having a number out of range', () => {
    it('should say the range', () => {
      expect(problems({ server: { port: 70000 } })).toEqual(['server.port: must be an integer from 0 to 65535, got 70000']);
      expect(problems({ models: { affine: { path: 'a.onnx', batching: { maxBatchSize: -1 } } } })).toEqual([
        'models.affine.batching.maxBatchSize: must be an integer ≥ 0, got -1',
      ]);
      expect(problems({ models: { affine: { path: 'a.onnx', instances: 0 } } })).toEqual(['models.affine.instances: must be an integer ≥ 1, or "auto", got 0']);
      expect(problems({ models: { affine: { path: 'a.onnx', instances: 1.5 } } })).toEqual(['models.affine.instances: must be an integer ≥ 1, or "auto", got 1.5']);
    });
  });

  describe('having a value outside an enum', () => {
    it('should list the allowed values and suggest the closest', () => {
      expect(problems({ server: { logLevel: 'warning' } })).toEqual([
        'server.logLevel: must be one of: fatal, error, warn, info, debug, trace, silent, got "warning" — did you mean "warn"?',
      ]);
    });

    it('should not suggest a value that is not close', () => {
      expect(problems({ server: { logLevel: 'verbose' } })).toEqual(['server.logLevel: must be one of: fatal, error, warn, info, debug, trace, silent, got "verbose"']);
    });
  });

  describe('having an unknown key', () => {
    it('should list the allowed keys and suggest the closest', () => {
      expect(problems({ server: { prot: 8080 } })).toEqual([
        'server: unknown key "prot" (allowed: host, port, bodyLimit, limits, logLevel, shutdownGracePeriod, workers, metricsPort, stateDir, exitOnModelError, openapi, trustProxy, tls, rateLimit) — did you mean "port"?',
      ]);
      expect(problems({ server: { bodylimit: '1MiB' } })[0]).toMatch(/unknown key "bodylimit" .* did you mean "bodyLimit"\?$/);
      expect(problems({ server: { shutdownGrace: '1s' } })[0]).toMatch(/unknown key "shutdownGrace" \(allowed: .*\)$/);
    });
  });

  describe('having an invalid model name or version label', () => {
    it('should show the rule', () => {
      expect(problems({ models: { 'my model': { path: 'a' } } })).toEqual([
        'models: invalid key "my model": must match /^[A-Za-z0-9][A-Za-z0-9_.-]*$/ (model names appear in URLs: a letter or digit, then letters, digits, "_", "." or "-")',
      ]);
      expect(problems({ models: { m: { versions: { v2: { path: 'a' } } } } })).toEqual([
        'models.m.versions: invalid key "v2": must match /^[1-9][0-9]*$/ (version labels are positive integers without leading zeros: 1, 2, 10)',
      ]);
    });

    it('should quote a model name with dots in paths', () => {
      expect(problems({ models: { 'gpt-4.1': { instances: 0 } } })).toEqual(['models["gpt-4.1"].instances: must be an integer ≥ 1, or "auto", got 0']);
    });
  });

  describe('having both path and versions', () => {
    it('should say that path is the shorthand', () => {
      expect(problems({ models: { m: { path: 'a', versions: { '1': { path: 'b' } } } } })).toEqual([
        'models.m: must not set both path and versions (path is shorthand for versions: {"1": {path: …}})',
      ]);
    });
  });

  describe('having empty versions', () => {
    it('should ask for at least one', () => {
      expect(problems({ models: { m: { versions: {} } } })).toEqual(['models.m.versions: must have at least 1 key, got {}']);
    });
  });

  describe('having a plugin listed twice', () => {
    it('should name the entry and both positions', () => {
      expect(problems({ plugins: ['@tessera/tracing', '@tessera/router-canary', '@tessera/tracing'] })).toEqual([
        'plugins: must not list the same entry twice: "@tessera/tracing" is at [0] and [2]',
      ]);
    });
  });

  describe('having bad durations and sizes', () => {
    it('should say what a duration or a size looks like', () => {
      expect(problems({ server: { shutdownGracePeriod: '30 sec' } })).toEqual([
        'server.shutdownGracePeriod: must be a duration: milliseconds as a number, or a string with a unit (ms, s, m, h, d) such as 500ms, 1.5s, 5m, 1h30m, got "30 sec"',
      ]);
      expect(problems({ server: { shutdownGracePeriod: -1 } })[0]).toMatch(/^server\.shutdownGracePeriod: must be a duration: .*, got -1$/);
      expect(problems({ server: { bodyLimit: '64 megs' } })).toEqual([
        'server.bodyLimit: must be a size: bytes as an integer, or a string with a unit (B, KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB = powers of 1024) such as 64MiB, 512KiB, 10MB, got "64 megs"',
      ]);
      expect(problems({ server: { bodyLimit: 1.5 } })[0]).toMatch(/^server\.bodyLimit: must be a size: .*, got 1\.5$/);
    });
  });

  describe('having several problems', () => {
    it('should report each on its own line, prefixed by the file', () => {
      try {
        resolveConfig({ server: { port: -1, logLevel: 'loud' }, models: { m: { instances: 'two' } } }, { configFile: '/srv/tessera.config.yaml', configDir: '/srv', env: {} });
        expect.unreachable();
      } catch (err) {
        expect((err as Error).message).toBe(
          [
            '/srv/tessera.config.yaml: server.port: must be an integer from 0 to 65535, got -1',
            '/srv/tessera.config.yaml: server.logLevel: must be one of: fatal, error, warn, info, debug, trace, silent, got "loud"',
            '/srv/tessera.config.yaml: models.m.instances: must be an integer ≥ 1, or "auto", got "two"',
          ].join('\n'),
        );
      }
    });

    it('should not prefix a file for configs given as objects', () => {
      expect(() => resolveConfig({ server: { port: -1 } }, { configDir: '/srv', env: {} })).toThrow(/^server\.port: must be/);
    });
  });
});

describe(validateAgainstSchema, () => {
  const upstreamSchema: JSONSchema = {
    type: 'object',
    additionalProperties: false,
    required: ['upstreams'],
    properties: {
      upstreams: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      timeout: { type: ['number', 'string'], format: 'tessera-duration', default: '60s' },
      retries: { type: 'integer', minimum: 0, default: 2 },
      stream: { type: 'boolean', default: true },
      mode: { anyOf: [{ const: 'round-robin' }, { type: 'object', required: ['weights'] }] },
    },
  };

  it('should fill in defaults in place and return the value', () => {
    const section: Record<string, unknown> = { upstreams: ['http://a'] };
    const result = validateAgainstSchema(upstreamSchema, section, 'models.chat');
    expect(result).toBe(section);
    expect(section).toEqual({ upstreams: ['http://a'], timeout: '60s', retries: 2, stream: true });
  });

  it('should convert strings where numbers, booleans and lists are wanted', () => {
    const section = { upstreams: 'http://a, http://b,', retries: '3', stream: 'FALSE' };
    validateAgainstSchema(upstreamSchema, section, 'models.chat');
    expect(section).toEqual({ upstreams: ['http://a', 'http://b'], retries: 3, stream: false, timeout: '60s' });
  });

  it('should report problems under the base path with the messages of the config file', () => {
    const error = catchError(() => validateAgainstSchema(upstreamSchema, { upstream: ['x'], retries: 'many', timeout: 'later' }, 'models.chat'));
    expect(error.code).toBe('TESSERA_E_CONFIG_INVALID');
    expect(error.message.split('\n')).toEqual([
      'models.chat: missing required key "upstreams"',
      'models.chat: unknown key "upstream" (allowed: upstreams, timeout, retries, stream, mode) — did you mean "upstreams"?',
      'models.chat.timeout: must be a duration: milliseconds as a number, or a string with a unit (ms, s, m, h, d) such as 500ms, 1.5s, 5m, 1h30m, got "later"',
      'models.chat.retries: must be an integer ≥ 0, got "many"',
    ]);
  });

  it('should name array entries by index', () => {
    expect(() => validateAgainstSchema(upstreamSchema, { upstreams: ['http://a', ''] }, 'models.chat')).toThrow('models.chat.upstreams[1]: must be a non-empty string, got ""');
  });

  it('should describe anyOf as its alternatives, once', () => {
    const error = catchError(() => validateAgainstSchema(upstreamSchema, { upstreams: ['a'], mode: 'random' }, 'models.chat'));
    expect(error.message).toBe('models.chat.mode: must be "round-robin", or an object (key: value), got "random"');
  });

  it('should use the code and file given', () => {
    const error = catchError(() => validateAgainstSchema(upstreamSchema, {}, 'tracing', { code: 'TESSERA_E_PLUGIN_CONFIG', file: '/srv/tessera.config.yaml' }));
    expect(error.code).toBe('TESSERA_E_PLUGIN_CONFIG');
    expect(error.message).toBe('/srv/tessera.config.yaml: tracing: missing required key "upstreams"');
  });

  it('should name the root when no base path is given', () => {
    expect(() => validateAgainstSchema({ type: 'object' }, 3)).toThrow('(root): must be an object (key: value), got 3');
  });

  it('should accept schemas with formats it does not know', () => {
    expect(validateAgainstSchema({ type: 'string', format: 'uri' }, 'not a uri', 'x')).toBe('not a uri');
  });

  it('should accept a fresh schema object with an $id it has seen', () => {
    const schema = (): JSONSchema => ({ $id: 'urn:test:fresh', type: 'object', properties: { n: { type: 'integer', default: 1 } } });
    expect(validateAgainstSchema(schema(), {}, 's')).toEqual({ n: 1 });
    expect(validateAgainstSchema(schema(), { n: '2' }, 's')).toEqual({ n: 2 });
  });

  it('should report an invalid schema as such', () => {
    expect(() => validateAgainstSchema({ type: 'integr' }, 1, 'models.m.batching')).toThrow(/^models\.m\.batching: the JSON Schema for this section is invalid/);
  });

  it('should explain const, oneOf, dependencies and false schemas', () => {
    expect(() => validateAgainstSchema({ const: 'x' }, 'y', 's')).toThrow('s: must be "x", got "y"');
    expect(() => validateAgainstSchema({ oneOf: [{ type: 'integer' }, { type: 'number' }] }, 1, 's')).toThrow('s: must match exactly one of: an integer, or a number; 1 matches several');
    expect(() => validateAgainstSchema({ type: 'object', dependencies: { cert: ['key'] } }, { cert: 'c' }, 's')).toThrow('s: key "cert" also needs "key"');
    expect(() => validateAgainstSchema({ type: 'object', properties: { old: false } }, { old: 1 }, 's')).toThrow('s.old: is not allowed here');
  });
});

describe(coerceToSchema, () => {
  it.each([
    [{ type: 'integer' }, '8000', 8000],
    [{ type: 'integer' }, ' 42 ', 42],
    [{ type: 'integer' }, '1.5', '1.5'],
    [{ type: 'number' }, '1.5', 1.5],
    [{ type: 'number' }, '1e3', 1000],
    [{ type: 'number' }, '', ''],
    [{ type: 'number' }, 'abc', 'abc'],
    [{ type: 'boolean' }, 'true', true],
    [{ type: 'boolean' }, 'False', false],
    [{ type: 'boolean' }, '1', '1'],
    [{ type: 'string' }, '8000', '8000'],
    [{ type: ['integer', 'string'] }, '8000', '8000'],
    [{ type: 'array', items: { type: 'string' } }, 'a,b , c', ['a', 'b', 'c']],
    [{ type: 'array', items: { type: 'string' } }, '', []],
    [{ type: 'array', items: { type: 'integer' } }, '8,16', [8, 16]],
    [{ type: 'array' }, 'a,b', ['a', 'b']],
    [{ type: 'array', items: { type: 'object' } }, 'a,b', 'a,b'],
    [{ type: 'integer' }, null, null],
    [{ type: 'integer' }, 5, 5],
  ] as const)('should turn %j with %j into %j', (schema, input, expected) => {
    expect(coerceToSchema(schema, input)).toEqual(expected);
  });

  it('should follow properties, patternProperties, additionalProperties, items, allOf and $ref', () => {
    const schema = {
      definitions: { port: { type: 'integer' } },
      type: 'object',
      properties: { a: { $ref: '#/definitions/port' }, list: { type: 'array', items: { type: 'object', properties: { n: { type: 'number' } } } } },
      patternProperties: { '^x-': { type: 'boolean' } },
      additionalProperties: { type: 'object', additionalProperties: { type: 'integer' } },
      allOf: [{ properties: { b: { type: 'number' } } }],
    };
    const value = { a: '1', b: '2.5', list: [{ n: '3' }], 'x-on': 'true', other: { k: '4' } };
    expect(coerceToSchema(schema, value)).toEqual({ a: 1, b: 2.5, list: [{ n: 3 }], 'x-on': true, other: { k: 4 } });
  });
});
