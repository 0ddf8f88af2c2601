#!/usr/bin/env node
// The `tessera` command. The CLI is compiled TypeScript (dist/cli.js); this file is committed so
// that npm links the command at install time, before anything is built (npm links no bin whose
// file is missing), and so that an unbuilt checkout says what to run instead of "not found".
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    `tessera: ${fileURLToPath(cli)} does not exist: @tessera/core is not built. ` +
      'In a clone of the Tessera repository, run `npm install` (it builds) or `npm run build` at its root.\n',
  );
  process.exit(1);
}
await import(cli.href);
