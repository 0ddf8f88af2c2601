/**
 * Just enough Markdown for the docs link check: the links of a file with their lines, and the
 * anchors GitHub gives its headings. Fenced code blocks and inline code are not Markdown.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface MarkdownLink {
  /** 1-based line of the link in its file. */
  line: number;
  /** The destination as written: `docs/x.md#part`, `#part`, `https://…`. */
  target: string;
}

export interface BrokenLink extends MarkdownLink {
  /** The file the link is in, relative to the repository root. */
  file: string;
  problem: string;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const ATX_HEADING = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT_UNDERLINE = /^ {0,3}(?:=+|-+)[ \t]*$/;
/** Lines that cannot be the text of a setext heading: blank, lists, quotes, tables, indented code. */
const NOT_PARAGRAPH = /^(?:\s*$| {4}|\t| {0,3}(?:[-*+>|#]|\d+[.)]\s))/;
// link text may hold one level of brackets (`[![badge](img)](url)`), a destination one level of parentheses
const INLINE_LINK = /\[((?:[^[\]]|\[[^[\]]*\])*)\]\(\s*(<[^>\n]*>|(?:[^()\s]|\([^()\s]*\))+)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/;
const HTML_LINK = /<(?:a|img)\b[^>]*?\s(?:href|src)\s*=\s*"([^"]*)"/gi;
const HTML_ANCHOR = /<[a-z][^>]*?\s(?:id|name)\s*=\s*"([^"]+)"/gi;

/** The lines of a file that are Markdown, not code: fenced blocks become empty lines. */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split(/\r?\n/).map((line) => {
    const open = FENCE.exec(line);
    if (fence !== undefined) {
      if (open && open[1]![0] === fence[0] && open[1]!.length >= fence.length && line.trim() === open[1]) fence = undefined;
      return '';
    }
    if (open) {
      fence = open[1];
      return '';
    }
    return line;
  });
}

/** Inline code spans blanked out (a run of N backticks closes at the next run of exactly N). */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, (span) => ' '.repeat(span.length));
}

/** A heading's text as GitHub renders it: no inline markup, links reduced to their text, code kept as written. */
function headingText(raw: string): string {
  const code: string[] = [];
  const marked = raw.replace(/(`+)(?!`)([\s\S]*?[^`])\1(?!`)/g, (_span, _ticks, text: string) => `\uE000${code.push(text.trim()) - 1}\uE000`);
  return marked
    .replace(/!?\[((?:[^[\]]|\[[^[\]]*\])*)\]\([^)]*\)/g, '$1') // links and images → their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/(\*{1,3})(?=\S)([\s\S]*?\S)\1/g, '$2') // emphasis with `*`
    .replace(/(?<!\w)(_{1,3})(?=\S)([\s\S]*?\S)\1(?!\w)/g, '$2') // emphasis with `_`, never inside a word
    .replace(/\\([!-/:-@[-`{-~])/g, '$1') // backslash escapes
    .replace(/\uE000(\d+)\uE000/g, (_m, i: string) => code[Number(i)]!)
    .trim();
}

/**
 * GitHub's anchor for a heading: lowercase, punctuation other than `-` and `_` removed, each space
 * a `-` (not collapsed). Letters and digits of any script stay.
 */
export function githubSlug(heading: string): string {
  return headingText(heading)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a file offers: its headings (a repeated slug gets `-1`, `-2`, … as on GitHub) and HTML ids. */
export function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (heading: string): void => {
    const slug = githubSlug(heading);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  };
  const lines = proseLines(markdown);
  lines.forEach((line, i) => {
    const atx = ATX_HEADING.exec(line);
    if (atx) add(atx[1] ?? '');
    else if (i > 0 && SETEXT_UNDERLINE.test(line) && !NOT_PARAGRAPH.test(lines[i - 1]!) && !ATX_HEADING.test(lines[i - 1]!)) add(lines[i - 1]!);
    for (const m of line.matchAll(HTML_ANCHOR)) anchors.add(m[1]!);
  });
  return anchors;
}

/** Every link of a file with its line: inline links and images, reference definitions, `<a href>` and `<img src>`. */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  proseLines(markdown).forEach((raw, i) => {
    const line = withoutCodeSpans(raw);
    const add = (target: string): void => {
      links.push({ line: i + 1, target: target.startsWith('<') && target.endsWith('>') ? target.slice(1, -1) : target });
    };
    for (const m of line.matchAll(INLINE_LINK)) add(m[2]!);
    const definition = REFERENCE_DEFINITION.exec(line);
    if (definition) add(definition[1]!);
    for (const m of line.matchAll(HTML_LINK)) add(m[1]!);
  });
  return links;
}

/** A URL with a scheme (`https:`, `mailto:`) or protocol-relative: not checked here. */
function isExternal(target: string): boolean {
  return /^[a-z][a-z\d+.-]*:/i.test(target) || target.startsWith('//');
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * The relative links of `file` (a path from `root`) that are broken: the file or folder they name
 * does not exist, the file is empty, or the anchor names no heading of the Markdown file.
 * A link that starts with `/` is read from the repository root, as GitHub does.
 */
export function brokenLinks(root: string, file: string): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const here = path.join(root, file);
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (abs: string): Set<string> => {
    let anchors = anchorCache.get(abs);
    if (!anchors) anchorCache.set(abs, (anchors = markdownAnchors(readFileSync(abs, 'utf8'))));
    return anchors;
  };
  for (const link of markdownLinks(readFileSync(here, 'utf8'))) {
    if (isExternal(link.target)) continue;
    const hash = link.target.indexOf('#');
    const pathPart = decode((hash === -1 ? link.target : link.target.slice(0, hash)).replace(/\?.*$/, ''));
    const fragment = hash === -1 ? undefined : decode(link.target.slice(hash + 1));
    const report = (problem: string): void => {
      broken.push({ file, ...link, problem });
    };

    const target = pathPart === '' ? here : pathPart.startsWith('/') ? path.join(root, pathPart) : path.resolve(path.dirname(here), pathPart);
    const shown = path.relative(root, target) || '.';
    if (!existsSync(target)) {
      report(`${shown} does not exist`);
      continue;
    }
    const isFile = statSync(target).isFile();
    if (isFile && readFileSync(target, 'utf8').trim() === '') {
      report(`${shown} is empty`);
      continue;
    }
    if (fragment === undefined || fragment === '' || !isFile || !/\.md$/i.test(target)) continue;
    if (!anchorsOf(target).has(fragment)) report(`no heading in ${shown} has the anchor #${fragment}`);
  }
  return broken;
}

/** `file:line: (target) problem`, for a failure message. */
export function formatBrokenLink(b: BrokenLink): string {
  return `${b.file}:${b.line}: (${b.target}) ${b.problem}`;
}
