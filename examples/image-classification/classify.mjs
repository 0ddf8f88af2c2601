#!/usr/bin/env node
/**
 * Sends every image of a folder to a running Tessera through `POST /v1/predict`, one image per
 * request (a few at a time), prints what the model answered, and writes a page of the results:
 *
 *   node examples/image-classification/classify.mjs [--url http://127.0.0.1:8000] [--dir DIR]
 *        [--out FILE] [--model text-orientation] [--concurrency 4] [--token KEY]
 *
 * `--dir` (default: images/ next to this file, where render.mjs writes) holds the images; the label
 * each should get comes from its `images.json` when there is one, else from the file name
 * (`…-0.png`, `…-180.jpg`); an image with neither is classified but not scored. `--out` (default:
 * results.html next to this file) is a self-contained page: every image inline, its expected and
 * predicted label, the score as a bar, wrong answers marked. `--token` (default: $TESSERA_API_KEY)
 * is sent as `Authorization: Bearer` to a server that requires a key.
 *
 * Exit code: 0 when every scored image got its label, 1 when one did not (or its request failed),
 * 2 when nothing could be classified (bad arguments, no images, server unreachable).
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * What the model answered for one image.
 * @typedef {object} Result
 * @property {string} file file name, inside the folder
 * @property {string} [expected] the label it should get, when known
 * @property {string} [predicted] the label the model gave (the top one)
 * @property {number} [score] its probability
 * @property {string} [error] why there is no answer (the server's code and message)
 * @property {string} mime the image's media type
 * @property {string} base64 the image, base64
 */

/**
 * Who answered, for the page.
 * @typedef {object} Run
 * @property {string} url
 * @property {string} model
 * @property {string} [version] the model version that answered (from the answers)
 * @property {string} at ISO time of the run
 */

const MIME = /** @type {Record<string, string>} */ ({ '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' });

/** Whether the answer for one image is right: known expectation, no error, same label. */
export const isCorrect = (/** @type {Result} */ r) => r.expected !== undefined && r.error === undefined && r.predicted === r.expected;

/** Images with an expected label (the others are shown, not scored). */
export const isScored = (/** @type {Result} */ r) => r.expected !== undefined;

/** @param {string} s */
function html(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * "n of m correct (accuracy)": the summary line of the table and of the page.
 * @param {readonly Result[]} results
 */
export function summary(results) {
  const scored = results.filter(isScored);
  const correct = scored.filter(isCorrect).length;
  const accuracy = scored.length === 0 ? '-' : `${((100 * correct) / scored.length).toFixed(1)} %`;
  const unscored = results.length - scored.length;
  return `${correct} of ${scored.length} correct (accuracy ${accuracy})${unscored > 0 ? `, ${unscored} without an expected label` : ''}`;
}

const CSS = `
  :root { --ok: #15803d; --bad: #b91c1c; --line: #e5e7eb; --muted: #6b7280; }
  * { box-sizing: border-box; }
  body { margin: 2rem auto; max-width: 72rem; padding: 0 1rem; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111827; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .meta { color: var(--muted); margin: 0 0 1rem; }
  .summary { font-size: 1.1rem; padding: .6rem .9rem; border-radius: .4rem; background: #f0fdf4; border: 1px solid #bbf7d0; }
  .summary.failed { background: #fef2f2; border-color: #fecaca; }
  .summary a { color: var(--bad); }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
  th { font-weight: 600; color: var(--muted); font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; }
  td.image { width: 1%; }
  td.image img { display: block; max-width: 26rem; max-height: 4rem; border: 1px solid var(--line); background: #fff; }
  td.file { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; word-break: break-all; }
  td.label { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 1rem; white-space: nowrap; }
  .bar { position: relative; width: 10rem; height: 1.1rem; background: #f3f4f6; border-radius: .2rem; overflow: hidden; }
  .bar span { position: absolute; inset: 0 auto 0 0; background: var(--ok); }
  .bar b { position: relative; font: 600 .75rem/1.1rem ui-monospace, "DejaVu Sans Mono", monospace; padding-left: .3rem; color: #111827; }
  tr.wrong { background: #fef2f2; }
  tr.wrong td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
  tr.wrong .bar span { background: var(--bad); }
  .verdict { font-weight: 700; white-space: nowrap; }
  .verdict.ok { color: var(--ok); }
  .verdict.wrong { color: var(--bad); }
  .verdict.none { color: var(--muted); font-weight: 400; }
  .error { color: var(--bad); font-size: .85rem; }
`;

/**
 * The results page: plain HTML and CSS, the images inline as data: URLs, nothing fetched — it can
 * be opened offline, mailed, or kept next to a bug report.
 * @param {readonly Result[]} results
 * @param {Run} run
 * @returns {string}
 */
export function resultsPage(results, run) {
  const wrong = results.filter((r) => isScored(r) && !isCorrect(r));
  const rows = results.map((r, i) => {
    const verdict = !isScored(r) ? '<span class="verdict none">–</span>' : isCorrect(r) ? '<span class="verdict ok">✓ ok</span>' : '<span class="verdict wrong">✗ wrong</span>';
    const score =
      r.score === undefined
        ? `<span class="error">${html(r.error ?? 'no score')}</span>`
        : `<div class="bar" title="score ${r.score}"><span style="width: ${(100 * Math.min(1, Math.max(0, r.score))).toFixed(1)}%"></span><b>${r.score.toFixed(4)}</b></div>`;
    return [
      `<tr id="image-${i + 1}"${isScored(r) && !isCorrect(r) ? ' class="wrong"' : ''} data-file="${html(r.file)}" data-expected="${html(r.expected ?? '')}" data-predicted="${html(r.predicted ?? '')}">`,
      `<td class="image"><img src="data:${r.mime};base64,${r.base64}" alt="${html(r.file)}"></td>`,
      `<td class="file">${html(r.file)}</td>`,
      `<td class="label">${html(r.expected ?? '–')}</td>`,
      `<td class="label">${html(r.predicted ?? '–')}</td>`,
      `<td>${score}</td>`,
      `<td>${verdict}</td>`,
      '</tr>',
    ].join('');
  });
  const wrongLinks = wrong.length === 0 ? '' : ` — wrong: ${wrong.map((r) => `<a href="#image-${results.indexOf(r) + 1}">${html(r.file)}</a>`).join(', ')}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(run.model)}: ${html(summary(results))}</title>
<style>${CSS}</style>
</head>
<body>
<h1>What ${html(run.model)} answered</h1>
<p class="meta">model <code>${html(run.model)}</code> version <code>${html(run.version ?? '?')}</code> at <code>${html(run.url)}</code>, ${html(run.at)}${run.model === 'text-orientation' ? '; labels: <code>0</code> upright, <code>180</code> upside down' : ''}</p>
<p class="summary${wrong.length > 0 ? ' failed' : ''}" id="summary">${html(summary(results))}${wrongLinks}</p>
<table>
<thead><tr><th>image</th><th>file</th><th>expected</th><th>predicted</th><th>score</th><th></th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</body>
</html>
`;
}

/**
 * The images of a folder and the label each should get: from `images.json` (render.mjs writes it)
 * when there is one, else every PNG, JPEG and WebP file, labelled by its name when it ends in
 * `-0` or `-180`.
 * @param {string} dir
 * @returns {Promise<{ file: string, expected?: string }[]>}
 */
export async function listImages(dir) {
  try {
    const listed = /** @type {{ file: string, expected?: string }[]} */ (JSON.parse(await readFile(path.join(dir, 'images.json'), 'utf8')));
    return listed.map(({ file, expected }) => ({ file, ...(expected !== undefined ? { expected: String(expected) } : {}) }));
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
  }
  const files = (await readdir(dir)).filter((f) => MIME[path.extname(f).toLowerCase()] !== undefined).sort();
  return files.map((file) => {
    const m = /-(0|180)\.[a-z]+$/i.exec(file);
    return { file, ...(m ? { expected: m[1] } : {}) };
  });
}

const USAGE = 'usage: node examples/image-classification/classify.mjs [--url URL] [--dir DIR] [--out FILE] [--model text-orientation] [--concurrency 4] [--token KEY]';

/**
 * @param {string} message
 * @returns {never}
 */
function fail(message) {
  console.error(`classify: ${message}`);
  process.exit(2);
}

/** @param {readonly string[][]} rows @returns {string} */
function table(rows) {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ')).join('\n');
}

/** The command line: classify, print, write the page, exit 0, 1 or 2. */
async function main() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  /** @type {{ url: string, dir?: string, out?: string, model: string, concurrency: string, token?: string, help?: boolean }} */
  let args;
  try {
    args = parseArgs({
      options: {
        url: { type: 'string', default: `http://127.0.0.1:${process.env['TESSERA_PORT'] || '8000'}` },
        dir: { type: 'string' },
        out: { type: 'string' },
        model: { type: 'string', default: 'text-orientation' },
        concurrency: { type: 'string', default: '4' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return fail(`${/** @type {Error} */ (err).message}\n${USAGE}`);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const base = args.url.replace(/\/+$/, '');
  const dir = path.resolve(args.dir ?? path.join(here, 'images'));
  const out = path.resolve(args.out ?? path.join(here, 'results.html'));
  const concurrency = Number(args.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) fail(`--concurrency must be a positive integer, got ${JSON.stringify(args.concurrency)}`);
  const token = args.token ?? process.env['TESSERA_API_KEY'];
  /** @type {Record<string, string>} */
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };

  /** @type {{ file: string, expected?: string }[]} */
  let images;
  try {
    images = await listImages(dir);
  } catch (err) {
    return fail(`cannot read ${dir}: ${/** @type {Error} */ (err).message}; render the images first: node examples/image-classification/render.mjs`);
  }
  if (images.length === 0) fail(`no PNG, JPEG or WebP images in ${dir}; render them first: node examples/image-classification/render.mjs`);

  // the model first: a clear message when the server is not there or serves it without images
  try {
    const res = await fetch(`${base}/v2/models/${encodeURIComponent(args.model)}`, { headers });
    const meta = /** @type {any} */ (await res.json());
    if (!res.ok) fail(`GET /v2/models/${args.model}: ${res.status} ${meta.code ?? ''} ${meta.error ?? ''}`.trim());
    const input = meta.inputs?.[0];
    if (meta.inputs?.length !== 1 || input?.datatype !== 'BYTES') {
      fail(`${args.model} takes ${(meta.inputs ?? []).map((/** @type {any} */ i) => `${i.name} ${i.datatype} [${i.shape}]`).join(', ')}, not images; serve the repository's tessera.config.yaml, where it has an image step`);
    }
  } catch (err) {
    fail(`cannot reach ${base} (${/** @type {Error} */ (err).message}); is \`npx tessera serve\` running?`);
  }

  /** @type {Result[]} */
  const results = new Array(images.length);
  /** @type {Set<string>} */
  const versions = new Set();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < images.length; i = next++) {
      const { file, expected } = /** @type {{ file: string, expected?: string }} */ (images[i]);
      const bytes = await readFile(path.join(dir, file));
      const base64 = bytes.toString('base64');
      /** @type {Result} */
      const result = { file, ...(expected !== undefined ? { expected } : {}), mime: MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream', base64 };
      try {
        const res = await fetch(`${base}/v1/predict`, { method: 'POST', headers, body: JSON.stringify({ model: args.model, inputs: { image: base64 } }) });
        const body = /** @type {any} */ (await res.json());
        if (!res.ok) {
          result.error = `${res.status} ${body.code ?? ''}: ${body.error ?? JSON.stringify(body)}`;
        } else {
          // one image sent as a string: predictions is that image's list, best first
          const top = body.predictions?.[0];
          if (!top) result.error = `no predictions in the answer: ${JSON.stringify(body).slice(0, 200)}`;
          else Object.assign(result, { predicted: String(top.label), score: Number(top.score) });
          versions.add(String(body.model_version));
        }
      } catch (err) {
        result.error = /** @type {Error} */ (err).message;
      }
      results[i] = result;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, images.length) }, worker));

  const rows = [['file', 'expected', 'predicted', 'score', 'ok']];
  for (const r of results) rows.push([r.file, r.expected ?? '-', r.predicted ?? '-', r.score === undefined ? (r.error ?? '') : r.score.toFixed(4), !isScored(r) ? '-' : isCorrect(r) ? 'ok' : 'WRONG']);
  const version = [...versions].join(', ') || undefined;
  console.log(table(rows));
  console.log(`${summary(results)}: ${args.model} version ${version ?? '?'} at ${base}`);
  await writeFile(out, resultsPage(results, { url: base, model: args.model, ...(version ? { version } : {}), at: new Date().toISOString() }));
  const shown = path.relative(process.cwd(), out);
  console.log(`wrote ${shown.startsWith('..') ? out : shown}`);
  process.exitCode = results.every((r) => !isScored(r) || isCorrect(r)) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
