/**
 * Relative links in the docs: README.md, docs/*.md, examples/* and packages/* READMEs. A link
 * fails when the file it names is missing or empty, or when its anchor (`#part`, `file.md#part`)
 * names no heading of that file by GitHub's slug rules. External URLs are not fetched.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokenLinks, formatBrokenLink, githubSlug, markdownAnchors, markdownLinks } from './markdown.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The Markdown files whose links are checked, relative to the root. */
function docFiles(): string[] {
  const inFolder = (folder: string): string[] =>
    readdirSync(path.join(ROOT, folder), { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.md'))
      .map((e) => path.join(folder, e.name));
  const readmes = (parent: string): string[] =>
    readdirSync(path.join(ROOT, parent), { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(path.join(ROOT, parent, e.name, 'README.md')))
      .map((e) => path.join(parent, e.name, 'README.md'));
  return ['README.md', ...inFolder('docs'), ...readmes('examples'), ...readmes('packages')].sort();
}

describe('docs links', () => {
  const files = docFiles();

  it('should check the README, docs/ and the example and package READMEs', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/configuration.md');
    expect(files.filter((f) => f.startsWith('examples/')).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.startsWith('packages/')).length).toBeGreaterThan(0);
  });

  it.each(files)('%s: every relative link names a non-empty file, and every anchor a heading', (file) => {
    // one line per broken link, `file:line: (target) problem`
    expect(brokenLinks(ROOT, file).map(formatBrokenLink), `broken links in ${file}`).toEqual([]);
  });
});

describe('the docs link checker', () => {
  describe('githubSlug', () => {
    it.each([
      ['Quick start', 'quick-start'],
      ['Dynamic batching (`batching.batcher: dynamic`)', 'dynamic-batching-batchingbatcher-dynamic'],
      ['Health checks, ejection and re-admission', 'health-checks-ejection-and-re-admission'],
      ['TesseraQueueSaturated', 'tesseraqueuesaturated'],
      ['`max_batch_size` and snake_case', 'max_batch_size-and-snake_case'],
      ['**Bold** and _emphasis_ and [a link](x.md)', 'bold-and-emphasis-and-a-link'],
      ['OpenAI-compatible API (LLMs)', 'openai-compatible-api-llms'],
      ['A — B', 'a--b'],
      ['Größe über 100 ×', 'größe-über-100-'],
      ['v2 → v3: what changed?', 'v2--v3-what-changed'],
    ])('should slug %j as %j', (heading, slug) => {
      expect(githubSlug(heading)).toBe(slug);
    });
  });

  it('should number repeated headings and read setext headings and HTML anchors, not code', () => {
    const md = ['# Errors', '## Errors', 'Setext', '------', '<a name="custom-anchor"></a>', '```md', '# not a heading', '```', '    # indented code is not read as a heading either'].join('\n');
    const anchors = markdownAnchors(md);
    expect([...anchors]).toEqual(expect.arrayContaining(['errors', 'errors-1', 'setext', 'custom-anchor']));
    expect(anchors.has('not-a-heading')).toBe(false);
  });

  it('should find links with their lines, outside code', () => {
    const md = [
      'See [a](a.md), ![img](img/x.png "title") and [b](<b c.md#part>).',
      '`[not](a-link.md)` and',
      '```',
      '[not](either.md)',
      '```',
      '[ref]: docs/ref.md',
      '<a href="html.md">html</a> [external](https://example.com/x.md) [wiki](Foo_(bar).md)',
    ].join('\n');
    expect(markdownLinks(md)).toEqual([
      { line: 1, target: 'a.md' },
      { line: 1, target: 'img/x.png' },
      { line: 1, target: 'b c.md#part' },
      { line: 6, target: 'docs/ref.md' },
      { line: 7, target: 'https://example.com/x.md' },
      { line: 7, target: 'Foo_(bar).md' },
      { line: 7, target: 'html.md' },
    ]);
  });

  describe('brokenLinks', () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'tessera-links-'));
      await mkdir(path.join(root, 'docs'));
      await mkdir(path.join(root, 'examples'));
      await writeFile(path.join(root, 'docs/full.md'), '# Full\n\n## Part two\n');
      await writeFile(path.join(root, 'docs/empty.md'), '');
      await writeFile(path.join(root, 'docs/blank.md'), '\n  \n');
      await writeFile(
        path.join(root, 'README.md'),
        [
          '# Read me',
          '[ok](docs/full.md) [ok anchor](docs/full.md#part-two) [ok self](#read-me) [ok folder](examples) [ok root](/docs/full.md)',
          '[gone](docs/gone.md)',
          '[empty](docs/empty.md) [blank](docs/blank.md#x)',
          '[bad anchor](docs/full.md#part-three) [bad self](#nothing) [external](https://example.com/#nothing)',
        ].join('\n'),
      );
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('should report a missing file, an empty file and an anchor that names no heading, each with its line', () => {
      expect(brokenLinks(root, 'README.md').map(formatBrokenLink)).toEqual([
        'README.md:3: (docs/gone.md) docs/gone.md does not exist',
        'README.md:4: (docs/empty.md) docs/empty.md is empty',
        'README.md:4: (docs/blank.md#x) docs/blank.md is empty',
        'README.md:5: (docs/full.md#part-three) no heading in docs/full.md has the anchor #part-three',
        'README.md:5: (#nothing) no heading in README.md has the anchor #nothing',
      ]);
    });
  });
});
