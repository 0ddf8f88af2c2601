import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkErrorCodeDocs, registerTestPlugins } from '@tessera/core/testing';
import plugin, { CANARY_ERRORS, abRouterFactory, canaryRouterFactory, shadowRouterFactory } from './index.js';

const HERE = import.meta.dirname;

describe('@tessera/router-canary', () => {
  it('should register the canary, ab and shadow strategies', async () => {
    const regs = await registerTestPlugins([plugin]);
    expect(regs.names('router').sort()).toEqual(['ab', 'canary', 'shadow']);
    expect(regs.get('router', 'canary')).toBe(canaryRouterFactory);
    expect(regs.get('router', 'ab')).toBe(abRouterFactory);
    expect(regs.get('router', 'shadow')).toBe(shadowRouterFactory);
  });

  it('should document every error code it declares, in its README and in docs/router-canary.md', () => {
    for (const file of [path.join(HERE, '../README.md'), path.join(HERE, '../../../docs/router-canary.md')]) {
      expect(checkErrorCodeDocs(CANARY_ERRORS.codes, readFileSync(file, 'utf8')), file).toEqual([]);
    }
  });
});
