import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { catchError } from '../config/test-support.js';
import { type PbtxtField, type PbtxtMessage, type PbtxtValue, parsePbtxt } from './pbtxt.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures/triton');

/** The fields as plain data: `{name: value}` pairs in order, messages nested. */
function plain(message: PbtxtMessage): [string, unknown][] {
  return message.fields.map((f: PbtxtField) => [f.name, value(f.value)]);
}

function value(v: PbtxtValue): unknown {
  switch (v.kind) {
    case 'message':
      return plain(v);
    case 'empty-list':
      return '[]';
    case 'identifier':
      return { enum: v.value };
    default:
      return v.value;
  }
}

const parse = (text: string): PbtxtMessage => parsePbtxt(text, '/repo/m/config.pbtxt');

describe(parsePbtxt, () => {
  describe("having Triton's own config.pbtxt files", () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.pbtxt'));

    it('should find the fixtures', () => {
      expect(files.length).toBeGreaterThanOrEqual(10);
    });

    it.each(files)('should parse %s', (file) => {
      const message = parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
      expect(message.fields.length).toBeGreaterThan(0);
    });

    it('should give the fields of docs/examples simple in order, a list as one field per element', () => {
      const message = parse(readFileSync(path.join(FIXTURES, 'simple.pbtxt'), 'utf8'));
      expect(plain(message)).toEqual([
        ['name', 'simple'],
        ['platform', 'onnxruntime_onnx'],
        ['max_batch_size', 8],
        ['input', [['name', 'INPUT0'], ['data_type', { enum: 'TYPE_INT32' }], ['dims', 16]]],
        ['input', [['name', 'INPUT1'], ['data_type', { enum: 'TYPE_INT32' }], ['dims', 16]]],
        ['output', [['name', 'OUTPUT0'], ['data_type', { enum: 'TYPE_INT32' }], ['dims', 16]]],
        ['output', [['name', 'OUTPUT1'], ['data_type', { enum: 'TYPE_INT32' }], ['dims', 16]]],
      ]);
      const name = message.fields[0]!;
      // line 26 (after the license header), column 1
      expect([name.line, name.col, name.value.line, name.value.col]).toEqual([26, 1, 26, 7]);
      expect(message.fields[3]!.inList).toBe(true);
    });

    it("should read `max_batch_size : 0`, `reshape { shape: [...] }` and nested lists (densenet_onnx)", () => {
      const message = parse(readFileSync(path.join(FIXTURES, 'densenet_onnx.pbtxt'), 'utf8'));
      expect(plain(message)).toContainEqual(['max_batch_size', 0]);
      const input = value(message.fields.find((f) => f.name === 'input')!.value);
      expect(input).toContainEqual(['reshape', [['shape', 1], ['shape', 3], ['shape', 224], ['shape', 224]]]);
      expect(input).toContainEqual(['format', { enum: 'FORMAT_NCHW' }]);
    });

    it('should read `version_policy: { latest { num_versions: 1 }}` and negative dims (cpu_instance)', () => {
      const message = parse(readFileSync(path.join(FIXTURES, 'cpu_instance.pbtxt'), 'utf8'));
      expect(plain(message)).toContainEqual(['version_policy', [['latest', [['num_versions', 1]]]]]);
      expect(value(message.fields.find((f) => f.name === 'input')!.value)).toContainEqual(['dims', -1]);
    });
  });

  describe('having scalars', () => {
    it('should decode string escapes, both quotes, and join adjacent strings', () => {
      const message = parse(String.raw`a: "x\n\t\"\\\x41\101\u00e9\U0001F600" b: 'it''s' c: "one " 'two'` + '\n' + String.raw`d: "\'\?\a"`);
      expect(plain(message)).toEqual([
        ['a', 'x\n\t"\\AAé😀'],
        ['b', 'its'],
        ['c', 'one two'],
        ['d', "'?\u0007"],
      ]);
    });

    it('should read decimal, hex, octal and float numbers, signs, inf and nan', () => {
      const message = parse('a: 42 b: -7 c: 0x1F d: 017 e: 1.5 f: .5 g: 1e3 h: 2.5f i: -inf j: nan k: 0 l: - 3 m: 1E-2 n: 10f');
      const values = message.fields.map((f) => (f.value.kind === 'number' ? f.value.value : undefined));
      expect(values).toEqual([42, -7, 31, 15, 1.5, 0.5, 1000, 2.5, -Infinity, NaN, 0, -3, 0.01, 10]);
      expect(message.fields[2]!.value).toMatchObject({ kind: 'number', text: '0x1F' });
    });

    it('should read enum names and booleans as identifiers', () => {
      expect(plain(parse('kind: KIND_GPU flag: true'))).toEqual([
        ['kind', { enum: 'KIND_GPU' }],
        ['flag', { enum: 'true' }],
      ]);
    });
  });

  describe('having messages and lists', () => {
    it('should read {} and <> messages, with or without a colon, and , or ; between fields', () => {
      const message = parse('a { x: 1, y: 2 } b: < x: 3; > c: {} d <>;');
      expect(plain(message)).toEqual([
        ['a', [['x', 1], ['y', 2]]],
        ['b', [['x', 3]]],
        ['c', []],
        ['d', []],
      ]);
    });

    it('should read lists of values and of messages, and mark an empty list', () => {
      const message = parse('dims: [ 1, -1 ] input [ { name: "a" }, < name: "b" > ] out: [{ name: "c" }] shape: [ ]');
      expect(plain(message)).toEqual([
        ['dims', 1],
        ['dims', -1],
        ['input', [['name', 'a']]],
        ['input', [['name', 'b']]],
        ['out', [['name', 'c']]],
        ['shape', '[]'],
      ]);
      expect(message.fields.every((f) => f.inList)).toBe(true);
    });

    it('should skip # comments anywhere, and a byte order mark', () => {
      const message = parse('\uFEFF# header\nname: "a" # trailing "not a string\ndims: [ 1, # one\n 2 ]\n#last');
      expect(plain(message)).toEqual([
        ['name', 'a'],
        ['dims', 1],
        ['dims', 2],
      ]);
      expect(message.fields[1]!.line).toBe(3);
    });

    it('should give an empty file no fields', () => {
      expect(parse('').fields).toEqual([]);
      expect(parse('# only a comment\n').fields).toEqual([]);
    });
  });

  describe('having malformed text', () => {
    it.each([
      ['max_batch_size 8', '1:16', 'expected ":" after the field name "max_batch_size", got "8"'],
      ['name: "abc', '1:7', 'unterminated string'],
      ['name: "a\nb"', '1:7', 'unterminated string'],
      ['input [ { name: "a" } ', '1:23', 'expected "]" to close the list opened at 1:7, got the end of the file'],
      ['input {\n  name: "a"\n', '3:1', 'expected "}" to close the message opened at 1:7, got the end of the file'],
      ['a { x: 1 >', '1:10', 'expected "}" to close the message opened at 1:3, got ">"'],
      ['a: 1 }', '1:6', 'unexpected "}": no message is open'],
      ['dims: [1, 2,]', '1:13', 'expected a value after ",", got "]"'],
      ['dims: [1 2]', '1:10', 'expected "," or "]" in the list, got "2"'],
      ['dims [1, 2]', '1:7', 'expected ":" before a list of values of "dims"'],
      ['x: [1, { a: 1 }]', '1:8', 'the list of "x" mixes messages and values'],
      ['x: 08', '1:4', 'invalid number "08"'],
      ['x: 1.2.3', '1:4', 'invalid number "1.2.3"'],
      ['x: 16abc', '1:4', 'invalid number "16abc"'],
      ['x: "\\q"', '1:5', 'unknown escape \\q'],
      ['x: "\\x"', '1:5', '\\x must be followed by one or two hex digits'],
      ['x: "\\400"', '1:5', 'octal escape \\400 is more than one byte'],
      ['x: "\\uD800"', '1:5', '\\uD800 is not a Unicode scalar value'],
      ['[ext.field]: 1', '1:1', 'extension and Any fields'],
      ['x: @', '1:4', 'unexpected character "@"'],
      ['x: -abc', '1:5', 'expected a number after "-", got "abc"'],
      ['x: ', '1:4', 'expected a value (a string, a number or a name), got the end of the file'],
      [': 1', '1:1', 'expected a field name, got ":"'],
    ])('should refuse %j at %s', (text, at, message) => {
      const err = catchError(() => parse(text));
      expect(err.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(err.message).toContain(`/repo/m/config.pbtxt:${at}: ${message}`);
    });

    it('should show the line and a caret under the column', () => {
      const err = catchError(() => parse('name: "m"\nmax_batch_size: 8\ninput [\n  { name: "x" dims: [1,, 2] }\n]\n'));
      expect(err.message).toBe('/repo/m/config.pbtxt:4:24: expected a value (a string, a number or a name), got ","\n      { name: "x" dims: [1,, 2] }\n                           ^');
    });
  });
});
