#!/usr/bin/env node
// prepack of @tessera/core: copies the repository's docs/*.md into the package's docs/ folder, so
// that a user who installs from the registry has them under node_modules/@tessera/core/docs/.
// `--remove` (postpack) deletes the copy again; it is git-ignored in case a pack stops half-way.
//
//   node ../../scripts/copy-docs.mjs [--remove]     (run in the package folder, as npm runs scripts)
//
// The docs sit side by side in the copy as in the repository, so links between them keep working.
// Links that leave docs/ (../bench/…, ../deploy/…, ../examples/…) would point at nothing inside a
// package: the copy keeps their text (a repository path) without the link, under a note saying so.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_DOCS = fileURLToPath(new URL('../docs/', import.meta.url));
const target = path.resolve(process.cwd(), 'docs');
const NOTE =
  '> Copied from `docs/` of the Tessera repository when `@tessera/core` was packed. Paths outside ' +
  '`docs/` (`bench/`, `deploy/`, `examples/`) name files of that repository.\n\n';

if (path.resolve(target) === path.resolve(REPO_DOCS)) {
  throw new Error(`copy-docs: refusing to write into the repository's own docs folder ${REPO_DOCS}; run it in a package folder`);
}

/**
 * `[text](../somewhere)` → `text`, in backticks when it is a bare path (`deploy/README.md`): such a
 * target exists in the repository, not in the package.
 */
function unlinkOutsideDocs(markdown) {
  return markdown.replace(/\[([^\]]+)\]\(\.\.\/[^)\s]*\)/g, (_, text) => (/^[^\s`]+$/.test(text) ? `\`${text}\`` : text));
}

/** The note goes under the document's title, or first when it has none. */
function withNote(markdown) {
  const title = /^# .*\n/.exec(markdown);
  return title ? `${title[0]}\n${NOTE}${markdown.slice(title[0].length).replace(/^\n/, '')}` : NOTE + markdown;
}

if (process.argv.includes('--remove')) {
  await rm(target, { recursive: true, force: true });
} else {
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const names = (await readdir(REPO_DOCS)).filter((n) => n.endsWith('.md')).sort();
  for (const name of names) {
    const text = await readFile(path.join(REPO_DOCS, name), 'utf8');
    await writeFile(path.join(target, name), text.trim() === '' ? text : withNote(unlinkOutsideDocs(text)));
  }
  // stderr: `npm pack --json` prints its JSON on stdout, and lifecycle scripts share it
  process.stderr.write(`copy-docs: ${names.length} docs copied from ${REPO_DOCS} to ${target}\n`);
}
