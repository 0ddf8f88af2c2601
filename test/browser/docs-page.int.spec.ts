/**
 * The /docs page in headless Chromium, against an in-process server with the real PP-OCR
 * text-orientation classifier and `auth` on: the page loads without a key and lists the routes,
 * Authorize takes a key, the page then loads the server's document (the model's example), and a
 * request sent from the page ("Try it out", "Execute") is answered 200 in the page.
 */
import type { Browser } from 'playwright-core';
import { TesseraServer, resolveConfig } from '@tessera/core';
import { silentLogger } from '@tessera/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLS_MODEL, tempDir } from '../integration/helpers.js';
import { chromiumMissing, launchChromium, screenshot } from './chromium.js';

const KEY = 'docs-page-key-3e2d1c0b9a8f7e6d';
const missing = chromiumMissing();

let server: TesseraServer;
let url: string;
let browser: Browser;

beforeAll(async () => {
  if (missing) return;
  const dir = await tempDir('tessera-docs-');
  const config = resolveConfig(
    { server: { host: '127.0.0.1', port: 0, logLevel: 'silent' }, models: { orientation: { path: CLS_MODEL } }, auth: { apiKeys: [{ name: 'user', key: KEY, scopes: ['infer'] }] } },
    { configDir: dir, env: {} },
  );
  server = new TesseraServer({ config, logger: silentLogger() });
  ({ url } = await server.start());
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe.skipIf(missing !== undefined)(`the /docs page${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('should list the routes, take a key and send a request from the page', async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${url}/docs`);
    // the routes are listed before any key is given
    const infer = page.locator('.opblock-summary-path[data-path="/v2/models/{model}/infer"]').first();
    await infer.waitFor({ timeout: 20_000 });
    await expect(page.locator('.opblock-summary-path[data-path="/v1/predict"]').count()).resolves.toBeGreaterThan(0);
    await screenshot(page, 'docs-routes');

    // Authorize with the key (the bearer scheme)
    await page.locator('button.authorize').first().click();
    const dialog = page.locator('.dialog-ux');
    await dialog.locator('input[type="text"], input[type="password"]').first().fill(KEY);
    // the page then loads the server's document with the key
    const full = page.waitForResponse((r) => r.url().endsWith('/openapi.json') && r.status() === 200, { timeout: 10_000 });
    await dialog.locator('button.authorize').first().click();
    await dialog.locator('button.close-modal').first().click();
    await full;

    // GET /v2/models/{model}: Try it out, fill the model, Execute
    const op = page.locator('#operations-OIP_v2_metadata-get_v2_models_model');
    await op.locator('.opblock-summary').click();
    await op.locator('button.try-out__btn').click();
    const param = op.locator('tr[data-param-name="model"]');
    const input = param.locator('input');
    if ((await input.count()) > 0) await input.fill('orientation');
    else await param.locator('select').selectOption('orientation');
    await op.locator('button.execute').click();
    const status = op.locator('.live-responses-table tr.response .response-col_status').first();
    await status.waitFor({ timeout: 10_000 });
    expect((await status.innerText()).trim()).toBe('200');
    await expect(op.locator('.live-responses-table tr.response .response-col_description').first().innerText()).resolves.toContain('"orientation"');
    await screenshot(page, 'docs-try-it-out');

    expect(violations).toEqual([]);
    // the key travelled in headers only
    expect(requests.filter((r) => r.includes(KEY))).toEqual([]);
    // everything came from the server itself
    expect(requests.filter((r) => !r.startsWith(url) && !r.startsWith('data:'))).toEqual([]);
    await page.close();
  }, 60_000);
});
