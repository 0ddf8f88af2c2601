import { TesseraError } from '../errors.js';

/** The formats an `image` step may be told to take (`formats`); sharp decodes each of them. */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** What `formats` is when the config does not say. */
export const DEFAULT_IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

/** An element's encoded image, ready for the decoder. */
export interface ImageBytes {
  bytes: Buffer;
  /** The format its signature says (one of `IMAGE_FORMATS`: others are refused here). */
  format: ImageFormat;
}

/** How an element is read: which input and element (for messages), and the limits. */
export interface ImageElement {
  input: string;
  index: number;
  formats: ReadonlySet<ImageFormat>;
  maxBytes: number;
}

const NAMES: Record<string, string> = {
  png: 'PNG',
  jpeg: 'JPEG',
  webp: 'WebP',
  gif: 'GIF',
  tiff: 'TIFF',
  avif: 'AVIF',
  heif: 'HEIF/HEIC',
  bmp: 'BMP',
  svg: 'SVG',
  ico: 'ICO',
  pdf: 'PDF',
  jp2: 'JPEG 2000',
  jxl: 'JPEG XL',
};

function startsWith(b: Uint8Array, at: number, bytes: readonly number[]): boolean {
  if (b.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (b[at + i] !== bytes[i]) return false;
  return true;
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const FTYP = ascii('ftyp');
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/**
 * The format whose signature is binary (it has bytes no base64 text has): PNG, JPEG, WebP
 * (`RIFF` + size + `WEBP`), TIFF, ICO, HEIF/AVIF (`ftyp`), JPEG 2000, JPEG XL. Such an element
 * is raw bytes whatever follows.
 */
function binarySignature(b: Uint8Array): string | undefined {
  if (startsWith(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(b, 0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, 0, ascii('RIFF')) && startsWith(b, 8, ascii('WEBP'))) return 'webp';
  if (startsWith(b, 0, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, 0, [0x4d, 0x4d, 0x00, 0x2a]) || startsWith(b, 0, [0x49, 0x49, 0x2b, 0x00])) return 'tiff';
  if (startsWith(b, 0, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  if (startsWith(b, 4, FTYP) && b.length >= 12) {
    const brand = String.fromCharCode(b[8]!, b[9]!, b[10]!, b[11]!);
    if (AVIF_BRANDS.has(brand)) return 'avif';
    if (HEIF_BRANDS.has(brand)) return 'heif';
  }
  if (startsWith(b, 0, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(b, 0, [0xff, 0x4f, 0xff, 0x51])) return 'jp2';
  if (startsWith(b, 0, [0xff, 0x0a]) || startsWith(b, 0, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'jxl';
  return undefined;
}

/** Formats whose signature is text (GIF, BMP, PDF, SVG/XML): recognised only when the element is not base64. */
function textSignature(b: Uint8Array): string | undefined {
  if (startsWith(b, 0, ascii('GIF87a')) || startsWith(b, 0, ascii('GIF89a'))) return 'gif';
  if (startsWith(b, 0, ascii('BM'))) return 'bmp';
  if (startsWith(b, 0, ascii('%PDF'))) return 'pdf';
  let i = startsWith(b, 0, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  if (startsWith(b, i, ascii('<svg')) || startsWith(b, i, ascii('<?xml')) || startsWith(b, i, ascii('<!DOCTYPE svg')) || startsWith(b, i, ascii('<!--'))) return 'svg';
  return undefined;
}

/** The format of decoded bytes (any signature), or undefined. */
export function sniffImageFormat(bytes: Uint8Array): string | undefined {
  return binarySignature(bytes) ?? textSignature(bytes);
}

/** A format's name for messages (`GIF`, `JPEG 2000`). */
export function formatName(format: string): string {
  return NAMES[format] ?? format;
}

function invalid(el: ImageElement, why: string): TesseraError {
  return new TesseraError('TESSERA_E_IMAGE_INVALID', `input '${el.input}': element ${el.index} ${why}`);
}

function allowedText(el: ImageElement): string {
  return [...el.formats].map(formatName).join(', ');
}

function checked(el: ImageElement, bytes: Buffer, format: string | undefined, how: string): ImageBytes {
  if (format === undefined) {
    throw invalid(el, `${how} is not an image: no ${allowedText(el)} signature in its first bytes (send the file's bytes, or base64 of them)`);
  }
  if (!el.formats.has(format as ImageFormat)) {
    throw new TesseraError('TESSERA_E_IMAGE_FORMAT', `input '${el.input}': element ${el.index} is ${/^[AEIOU]/.test(formatName(format)) ? 'an' : 'a'} ${formatName(format)} image; this model takes ${allowedText(el)}`);
  }
  return { bytes, format: format as ImageFormat };
}

function tooLarge(el: ImageElement, bytes: number): TesseraError {
  return new TesseraError('TESSERA_E_IMAGE_TOO_LARGE', `input '${el.input}': element ${el.index} has ${bytes} bytes, over the image step's maxBytes (${el.maxBytes})`);
}

const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const WHITESPACE = /[\t\n\r ]+/g;

/**
 * One BYTES element as an encoded image. An element whose first bytes are a binary signature
 * (PNG, JPEG, WebP, …) is the file itself (binary tensor data keeps it one character per byte,
 * see `TensorSpec.content`); anything else is text: base64 of the file (standard or URL-safe
 * alphabet, padding and line breaks allowed) or a `data:image/…;base64,` URL. Throws 400
 * `TESSERA_E_IMAGE_INVALID` (empty, neither), `TESSERA_E_IMAGE_FORMAT` (a format not allowed, or
 * not an image format the step knows) or `TESSERA_E_IMAGE_TOO_LARGE` (over `maxBytes`, checked on
 * the length before base64 is decoded).
 */
export function imageBytes(element: string, el: ImageElement): ImageBytes {
  if (element.length === 0) throw invalid(el, 'is empty; send an image (its bytes, base64, or a data: URL)');
  // latin1: a binary element holds one byte per character; base64 text is ASCII either way
  const head = Buffer.from(element.slice(0, 64), 'latin1');
  const binary = binarySignature(head);
  if (binary !== undefined) {
    if (element.length > el.maxBytes) throw tooLarge(el, element.length);
    return checked(el, Buffer.from(element, 'latin1'), binary, 'it');
  }
  let text = element;
  let how = 'its base64';
  const url = DATA_URL.exec(element.slice(0, 256));
  if (url) {
    if (!url[2]!.toLowerCase().split(';').includes('base64')) throw invalid(el, `is a data: URL without ';base64'; send the image base64-encoded (data:image/png;base64,…)`);
    text = element.slice(url[0].length);
    how = 'its data: URL';
  } else if (element.startsWith('data:')) {
    throw invalid(el, 'is a data: URL that cannot be read; send data:image/png;base64,…');
  }
  // megabytes of base64 are not scanned by regular expressions on the common path: whitespace is
  // looked for natively before it is removed, and text that decodes to the length its size implies
  // and to an image signature is taken as it is (a stray character further in corrupts the image,
  // which the decoder then refuses with 400 TESSERA_E_IMAGE_INVALID); anything else is checked
  // against the alphabet, for the precise refusal
  const clean = hasWhitespace(text) ? text.replace(WHITESPACE, '') : text;
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  const decodedLength = Math.floor((clean.length * 3) / 4) - padding;
  let bytes: Buffer | undefined;
  if (clean.length % 4 === 0 && decodedLength > 0 && decodedLength <= el.maxBytes) {
    bytes = Buffer.from(clean, 'base64');
    if (bytes.length !== decodedLength || binarySignature(bytes.subarray(0, 64)) === undefined) bytes = undefined;
  }
  if (!bytes && (!BASE64.test(clean) || clean.length % 4 === 1)) {
    const found = url ? undefined : textSignature(head);
    if (found !== undefined) {
      if (element.length > el.maxBytes) throw tooLarge(el, element.length);
      return checked(el, Buffer.from(element, 'latin1'), found, 'it');
    }
    throw invalid(el, `is neither an image (${allowedText(el)}) nor base64 text of one`);
  }
  if (decodedLength === 0) throw invalid(el, `is empty once ${how} is decoded`);
  if (decodedLength > el.maxBytes) throw tooLarge(el, decodedLength);
  bytes ??= Buffer.from(clean, 'base64');
  return checked(el, bytes, sniffImageFormat(bytes.subarray(0, 64)), how);
}

/** Whether base64 text holds whitespace (line breaks of MIME base64): four native scans, no regular expression over megabytes. */
function hasWhitespace(text: string): boolean {
  return text.includes('\n') || text.includes(' ') || text.includes('\r') || text.includes('\t');
}
