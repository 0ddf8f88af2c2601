import { describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { substituteEnv } from './env.js';
import { catchError } from './test-support.js';

const env = { HOST: 'example.org', PORT: '9000', EMPTY: '', TOKEN: 'a$b${c}' };

describe(substituteEnv, () => {
  describe('having references that are set', () => {
    it('should replace ${VAR} anywhere in a string', () => {
      expect(substituteEnv('http://${HOST}:${PORT}/v1', env)).toBe('http://example.org:9000/v1');
    });

    it('should give an empty variable as an empty string', () => {
      expect(substituteEnv('[${EMPTY}]', env)).toBe('[]');
    });

    it('should not expand references inside a variable\'s value', () => {
      expect(substituteEnv('${TOKEN}', env)).toBe('a$b${c}');
    });
  });

  describe('having defaults', () => {
    it('should use the default when the variable is unset', () => {
      expect(substituteEnv('${NOPE:-http://127.0.0.1:8001}', env)).toBe('http://127.0.0.1:8001');
    });

    it('should use the default when the variable is empty (shell :- semantics)', () => {
      expect(substituteEnv('${EMPTY:-fallback}', env)).toBe('fallback');
    });

    it('should prefer a set variable over the default', () => {
      expect(substituteEnv('${PORT:-8000}', env)).toBe('9000');
    });

    it('should allow an empty default', () => {
      expect(substituteEnv('x${NOPE:-}y', env)).toBe('xy');
    });

    it('should expand references nested in a default', () => {
      expect(substituteEnv('${NOPE:-${HOST}}', env)).toBe('example.org');
      expect(substituteEnv('${NOPE:-${ALSO_NOPE:-deep}}', env)).toBe('deep');
    });
  });

  describe('having escapes', () => {
    it('should turn $${ into a literal ${', () => {
      expect(substituteEnv('$${HOST} is ${HOST}', env)).toBe('${HOST} is example.org');
    });

    it('should leave other dollar signs alone', () => {
      expect(substituteEnv('price: $5, $$, $HOST', env)).toBe('price: $5, $$, $HOST');
    });
  });

  describe('having a config tree', () => {
    it('should substitute every string value, in objects and arrays, and not keys', () => {
      const tree = { '${HOST}': 'k', server: { port: '${PORT}', n: 1, on: true, nothing: null }, list: ['${HOST}', 2] };
      expect(substituteEnv(tree, env)).toEqual({ '${HOST}': 'k', server: { port: '9000', n: 1, on: true, nothing: null }, list: ['example.org', 2] });
    });

    it('should not change its input', () => {
      const tree = { a: ['${HOST}'] };
      substituteEnv(tree, env);
      expect(tree).toEqual({ a: ['${HOST}'] });
    });

    it('should keep class instances as they are', () => {
      const date = new Date(0);
      expect(substituteEnv({ date }, env).date).toBe(date);
    });

    it('should keep a __proto__ key as a plain key', () => {
      const tree = JSON.parse('{"__proto__": {"polluted": "${HOST}"}}') as Record<string, unknown>;
      const result = substituteEnv(tree, env);
      expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
      expect(Object.keys(result)).toEqual(['__proto__']);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    });
  });

  describe('having a variable that is not set', () => {
    it('should throw TESSERA_E_CONFIG_ENV naming the path and how to give a default', () => {
      const error = catchError(() => substituteEnv({ models: { chat: { upstreams: ['${VLLM_URL}'] } } }, {}));
      expect(error).toBeInstanceOf(TesseraError);
      expect(error.code).toBe('TESSERA_E_CONFIG_ENV');
      expect(error.message).toBe('models.chat.upstreams[0]: environment variable VLLM_URL is not set (use ${VLLM_URL:-default} to give a default)');
    });

    it('should list every unset variable, one per line', () => {
      const error = catchError(() => substituteEnv({ a: '${A}', b: { c: '${B}${C}' } }, {}));
      expect(error.message.split('\n')).toEqual([
        'a: environment variable A is not set (use ${A:-default} to give a default)',
        'b.c: environment variable B is not set (use ${B:-default} to give a default)',
        'b.c: environment variable C is not set (use ${C:-default} to give a default)',
      ]);
    });

    it('should use the base path given', () => {
      expect(() => substituteEnv('${X}', {}, 'tracing.endpoint')).toThrow(/^tracing\.endpoint: environment variable X is not set/);
    });

    it('should name the root when the whole config is a string', () => {
      expect(() => substituteEnv('${X}', {})).toThrow(/^\(root\): environment variable X/);
    });
  });

  describe('having malformed references', () => {
    it.each([
      ['${}', 'invalid environment reference ${}'],
      ['${1ABC}', 'invalid environment reference ${1ABC}: a name is letters, digits and "_"'],
      ['${A-B}', 'invalid environment reference ${A-B}'],
      ['${A:=x}', 'invalid environment reference ${A:=x}: after the name only ":-default" may follow'],
      ['x ${HOST', 'unclosed environment reference in "x ${HOST"'],
    ])('should report %j', (input, message) => {
      const error = catchError(() => substituteEnv({ s: input }, env));
      expect(error.code).toBe('TESSERA_E_CONFIG_ENV');
      expect(error.message).toContain(`s: ${message}`);
      expect(error.message).toContain('write $${ for a literal ${');
    });
  });
});
