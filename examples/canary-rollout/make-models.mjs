#!/usr/bin/env node
/**
 * Writes the example's four model files (see models.mjs):
 *
 *   node examples/canary-rollout/make-models.mjs            # into examples/canary-rollout/models/
 *   CANARY_MODELS_DIR=/tmp/m node examples/canary-rollout/make-models.mjs
 *
 * The config reads them from the same place (`${CANARY_MODELS_DIR:-./models}`), so set the
 * variable for both commands or for neither. A relative CANARY_MODELS_DIR is taken, as the config
 * takes it, from this example's folder.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCanaryModels } from './models.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(here, process.env['CANARY_MODELS_DIR'] || 'models');
const files = await writeCanaryModels(dir);
for (const [name, file] of Object.entries(files)) {
  const relative = path.relative(process.cwd(), file);
  console.log(`${name.padEnd(8)} ${relative.startsWith('..') ? file : relative}`);
}
