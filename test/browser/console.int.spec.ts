/**
 * @tessera/console in headless Chromium against real `tessera serve` processes on loopback, with
 * the real PP-OCR text-orientation classifier: the models listed (by the page's script, and by the
 * server for a browser without JavaScript), the live charts under real /v1/predict load, "Try it",
 * and a canary rollout (@tessera/router-canary, two versions of the classifier) rolled back from
 * the page with an admin key — and refused with an infer-only key. Every page is watched for CSP
 * violations and script errors.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';
import { CLS_MODEL, ROOT, http, tempDir, writeConfig } from '../integration/helpers.js';
import { chromiumMissing, launchChromium, screenshot } from './chromium.js';

const missing = chromiumMissing();
const MODEL = 'text-orientation';
const ADMIN_KEY = 'console-admin-key-0123456789';
const INFER_KEY = 'console-infer-key-0123456789';
const CSP_PARTS = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"];

let dir: string;
let open: TesseraProcess;
let secured: TesseraProcess;
let browser: Browser;
let line: Buffer;

/** The default config's text-orientation section (preprocess, postprocess, batching), without its path. */
async function defaultSection(): Promise<Record<string, unknown>> {
  const defaults = parse(await readFile(path.join(ROOT, 'tessera.config.yaml'), 'utf8')) as { models: Record<string, Record<string, unknown>> };
  const { path: _path, ...section } = defaults.models[MODEL]!;
  return { ...section, sessionOptions: { intraOpNumThreads: 1, logSeverityLevel: 4 } };
}

/** A text line as the classifier's crops look: dark text on white. */
async function textLine(text: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="240" height="48"><rect width="100%" height="100%" fill="white"/><text x="8" y="34" font-family="DejaVu Sans" font-size="28" fill="black">${text}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** What a page reported that it should not: CSP violations, script errors, failed loads. */
interface Watched {
  page: Page;
  problems: string[];
}

async function openPage(context: BrowserContext, url: string): Promise<Watched> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(`console.${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  await page.goto(url);
  return { page, problems };
}

/** Console errors other than the API's own refusals (a 401 or 403 the page asked for and shows). */
function unexpected(problems: readonly string[], allowStatuses: readonly number[] = []): string[] {
  return problems.filter((p) => !allowStatuses.some((s) => p.includes(`status of ${s}`)));
}

async function routingOf(server: TesseraProcess, model: string): Promise<any> {
  const res = await http(`${server.url}/v1/routing/${model}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

beforeAll(async () => {
  if (missing) return;
  dir = await tempDir('tessera-console-');
  const section = await defaultSection();
  const openConfig = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0 }, plugins: ['@tessera/console'], models: { [MODEL]: { ...section, path: CLS_MODEL } } }, 'open.yaml');
  const securedConfig = await writeConfig(
    dir,
    {
      server: { host: '127.0.0.1', port: 0, stateDir: path.join(dir, 'state') },
      plugins: ['@tessera/router-canary', '@tessera/console'],
      auth: {
        apiKeys: [
          { name: 'ops', key: ADMIN_KEY, scopes: ['infer', 'admin', 'metrics'] },
          { name: 'app', key: INFER_KEY, scopes: ['infer'] },
        ],
      },
      models: {
        // the same ONNX file as both versions: the rollout only has to exist, not to differ
        cls: {
          ...section,
          versions: { '1': { path: CLS_MODEL }, '2': { path: CLS_MODEL } },
          routing: { strategy: 'canary', baseline: '1', canary: '2', steps: [50, 100], interval: '1h', minRequests: 1000, threshold: 2 },
        },
      },
    },
    'secured.yaml',
  );
  [open, secured, browser, line] = await Promise.all([
    startTessera({ args: ['serve', '-c', openConfig], timeoutMs: 60_000 }),
    startTessera({ args: ['serve', '-c', securedConfig], timeoutMs: 60_000 }),
    launchChromium(),
    textLine('model server'),
  ]);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([open?.stop(), secured?.stop()]);
});

describe.skipIf(missing !== undefined)(`the web console in Chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('should answer /console with a strict CSP, nosniff and no-referrer, without a key even when auth is on', async () => {
    for (const server of [open, secured]) {
      const res = await fetch(`${server.url}/console`);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const part of CSP_PARTS) expect(csp).toContain(part);
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await res.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\sstyle=|<style/);
    }
    // the page holds no data for a browser without a key: the API still needs one
    expect(await (await fetch(`${secured.url}/console`)).text()).toContain('enable JavaScript and enter a key');
    expect((await fetch(`${secured.url}/v2/repository/index`)).status).toBe(401);
  });

  it('should list the models without JavaScript when auth is off (server-rendered)', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const { page, problems } = await openPage(context, `${open.url}/console`);
    const row = page.locator(`#models-rows tr[data-model="${MODEL}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('td').allInnerTexts()).toEqual([MODEL, '1', 'READY', 'ready']);
    expect(await page.locator('#metrics').isVisible()).toBe(false);
    await screenshot(page, 'console-no-javascript');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('should show the models, and predictions in "Try it", of a running server', async () => {
    const context = await browser.newContext();
    const { page, problems } = await openPage(context, `${open.url}/console`);
    await page.locator('#ssr-notice').waitFor({ state: 'detached' });
    const row = page.locator(`#models-rows tr[data-model="${MODEL}"][data-version="1"]`);
    await expect.poll(() => row.locator('td.readiness').textContent()).toBe('ready');
    expect(await row.locator('td').nth(2).textContent()).toBe('READY');
    expect(await page.locator('#key-dialog').isVisible()).toBe(false);

    await expect.poll(() => page.locator('#try-model option').allTextContents()).toEqual([MODEL]);
    // a file chosen by the user
    await page.locator('#try-file').setInputFiles({ name: 'line.png', mimeType: 'image/png', buffer: line });
    await page.locator('#try-preview').waitFor({ state: 'visible' });
    await page.locator('#try-send').click();
    await page.locator('#try-predictions tbody tr').first().waitFor();
    const label = await page.locator('#try-predictions td.label').first().textContent();
    expect(label).toBe('0');
    const score = Number(await page.locator('#try-predictions td.score').first().textContent());
    expect(score).toBeGreaterThan(0.5);
    expect(score).toBeLessThanOrEqual(1);
    // the sample drawn by the page
    await page.locator('#try-sample').click();
    await page.locator('#try-send').click();
    await expect.poll(async () => JSON.parse((await page.locator('#try-raw').textContent()) ?? '{}').model_name).toBe(MODEL);
    expect(['0', '180']).toContain(await page.locator('#try-predictions td.label').first().textContent());
    await screenshot(page, 'console-models-try-it');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('should draw the request rate and latency of real load, the charts growing as it runs', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const { page, problems } = await openPage(context, `${open.url}/console`);
    const card = page.locator(`#metrics-cards article[data-model="${MODEL}"]`);
    await card.waitFor();
    const body = JSON.stringify({ model: MODEL, inputs: { image: line.toString('base64') } });
    let stop = false;
    let sent = 0;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const res = await fetch(`${open.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        sent++;
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    try {
      const rate = async (): Promise<number> => Number((await card.locator('dd[data-metric="rate"]').getAttribute('data-value')) || 0);
      await expect.poll(rate, { timeout: 15_000, interval: 250 }).toBeGreaterThan(0);
      const points = async (): Promise<number> => Number(await card.getAttribute('data-points'));
      const before = await points();
      await expect.poll(points, { timeout: 10_000, interval: 250 }).toBeGreaterThanOrEqual(before + 2);
      expect(await rate()).toBeGreaterThan(0);
      await expect.poll(async () => Number((await card.locator('dd[data-metric="p50Ms"]').getAttribute('data-value')) || 0)).toBeGreaterThan(0);
      expect(Number(await card.locator('dd[data-metric="meanBatchSize"]').getAttribute('data-value'))).toBeGreaterThanOrEqual(1);
      // uPlot drew both charts
      expect(await card.locator('.chart canvas').count()).toBe(2);
      await screenshot(page, 'console-metrics-under-load');
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(sent).toBeGreaterThan(0);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('should show the 403 message on the admin buttons with an infer-only key, and change nothing', async () => {
    const context = await browser.newContext();
    const { page, problems } = await openPage(context, `${secured.url}/console`);
    const dialog = page.locator('#key-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#key-input').fill(INFER_KEY);
    await page.locator('#key-ok').click();
    // the models come from /v2/models/stats (metadata), routing is refused
    await expect.poll(() => page.locator('#models-rows tr[data-model="cls"]').count()).toBe(2);
    await expect.poll(() => page.locator('#rollouts-error').textContent()).toContain('403');
    const pause = page.locator('#rollouts-cards button[data-model="cls"][data-action="pause"]');
    await pause.click();
    const outcome = page.locator('#rollouts-cards article[data-model="cls"] [data-outcome="error"]');
    await expect.poll(() => outcome.textContent()).toMatch(/pause failed: .*admin scope.*403 TESSERA_E_AUTH_FORBIDDEN/);
    await screenshot(page, 'console-infer-key-403');
    expect((await routingOf(secured, 'cls')).state).toBe('progressing');
    // the page asked once (the dialog stays closed), the key is in sessionStorage only
    expect(await dialog.isVisible()).toBe(false);
    expect(await page.evaluate('[sessionStorage.length, localStorage.length]')).toEqual([1, 0]);
    expect(page.url()).not.toContain(INFER_KEY);
    // the 401 before the key and the 403s are the API's answers, logged by Chromium as failed loads
    expect(unexpected(problems, [401, 403])).toEqual([]);
    await context.close();
  });

  it('should roll a canary back when Rollback is pressed with an admin key, then forget the key', async () => {
    expect((await routingOf(secured, 'cls')).state).toBe('progressing');
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const { page, problems } = await openPage(context, `${secured.url}/console`);
    await page.locator('#key-dialog').waitFor({ state: 'visible' });
    await page.locator('#key-input').fill(ADMIN_KEY);
    await page.locator('#key-ok').click();
    const card = page.locator('#rollouts-cards article[data-model="cls"]');
    await expect.poll(() => card.getAttribute('data-state')).toBe('progressing');
    expect(await card.locator('td[data-weight="2"]').textContent()).toBe('50 %');
    await card.locator('button[data-action="rollback"]').click();
    await expect.poll(() => card.locator('[data-outcome="ok"]').textContent()).toContain('the rollout is failed');
    await expect.poll(() => card.getAttribute('data-state')).toBe('failed');
    expect(await card.locator('td[data-weight="2"]').textContent()).toBe('0 %');
    expect(await card.locator('.history').textContent()).toContain('rollback by an operator: from the console');

    const routing = await routingOf(secured, 'cls');
    expect(routing).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(routing.history.at(-1)).toMatchObject({ kind: 'transition', from: 'progressing', to: 'failed', by: 'operator' });
    await screenshot(page, 'console-rollback');

    await page.locator('#key-forget').click();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(await page.locator('#key-status').textContent()).toBe('no key');
    expect(unexpected(problems, [401])).toEqual([]);
    await context.close();
  });
});
