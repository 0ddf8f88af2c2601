// bench/images.mjs: its windows summed up per image kind and concurrency — served (`POST
// /v1/predict`) against direct (sharp + onnxruntime-node in one process, its best batch) — and the
// Markdown written to docs/benchmarks.md between the bench-images markers.
//
// A row's ratio is served ÷ direct images/s, taken round by round against the best direct batch of
// that round, then averaged. Picking the best of several direct batches favours the direct side (the
// largest of a few noisy figures): the ratio leans against the server, not for it.

import { finite, fixed, sectionHead, suiteMarkers, whole } from './contest-report.mjs';

/** The markers of a named section: `images` (the default), or e.g. `images-h200` for a run made elsewhere. */
export const imagesMarkers = (section) => suiteMarkers('images', section);

const mean = (xs) => {
  const v = xs.filter(finite);
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
};

/** One row per kind and concurrency: the served windows, the direct windows by batch, the best direct batch and the ratio. */
export function evaluateImages(results) {
  const rows = [];
  const { kinds, concurrency } = results.settings;
  for (const kind of kinds) {
    for (const c of concurrency) {
      const ws = results.windows.filter((w) => w.kind === kind && w.concurrency === c);
      const served = ws.filter((w) => w.side === 'served');
      const directAll = ws.filter((w) => w.side === 'direct');
      if (served.length === 0 && directAll.length === 0) continue;
      const rounds = [...new Set(ws.map((w) => w.round))].sort((a, b) => a - b);
      const perRound = [];
      const bestDirect = [];
      for (const round of rounds) {
        const s = served.find((w) => w.round === round);
        const best = directAll.filter((w) => w.round === round).reduce((a, b) => (a && a.imagesPerSec >= b.imagesPerSec ? a : b), null);
        if (best) bestDirect.push(best);
        perRound.push(s && best && best.imagesPerSec > 0 ? s.imagesPerSec / best.imagesPerSec : null);
      }
      const batches = [...new Set(directAll.map((w) => w.batch))].sort((a, b) => a - b);
      const byBatch = batches.map((b) => {
        const w = directAll.filter((x) => x.batch === b);
        return { batch: b, workers: w[0]?.workers ?? null, imagesPerSec: mean(w.map((x) => x.imagesPerSec)), p50Ms: mean(w.map((x) => x.latencyMs.p50)), p99Ms: mean(w.map((x) => x.latencyMs.p99)) };
      });
      const counts = {};
      for (const w of bestDirect) counts[w.batch] = (counts[w.batch] ?? 0) + 1;
      const bestBatch = Number(Object.entries(counts).sort((a, b) => b[1] - a[1])[0]?.[0] ?? NaN);
      const phase = (k) => mean(served.map((w) => w.phases?.[k]));
      rows.push({
        kind,
        concurrency: c,
        rounds: rounds.length,
        ratio: mean(perRound),
        perRoundRatio: perRound,
        served: {
          imagesPerSec: mean(served.map((w) => w.imagesPerSec)),
          p50Ms: mean(served.map((w) => w.latencyMs.p50)),
          p99Ms: mean(served.map((w) => w.latencyMs.p99)),
          failed: served.reduce((n, w) => n + w.failed, 0),
          images: served.reduce((n, w) => n + w.images, 0),
          meanBatch: mean(served.map((w) => w.meanBatch)),
          decodeShare: mean(served.map((w) => w.decodeShare)),
          inputMs: phase('inputMs'),
          queueMs: phase('queueMs'),
          inferMs: phase('inferMs'),
          outputMs: phase('outputMs'),
          totalMs: phase('totalMs'),
          serverCpuUsPerImage: mean(served.map((w) => w.serverCpuUsPerImage)),
          loadCpuPct: mean(served.map((w) => w.loadCpuPct)),
          disturbed: served.filter((w) => w.disturbed).length,
        },
        direct: {
          bestBatch: Number.isFinite(bestBatch) ? bestBatch : null,
          imagesPerSec: mean(bestDirect.map((w) => w.imagesPerSec)),
          p50Ms: mean(bestDirect.map((w) => w.latencyMs.p50)),
          p99Ms: mean(bestDirect.map((w) => w.latencyMs.p99)),
          decodeShare: mean(bestDirect.map((w) => w.decodeShare)),
          decodeMsPerBatch: mean(bestDirect.map((w) => w.decodeMsPerBatch)),
          runMsPerBatch: mean(bestDirect.map((w) => w.runMsPerBatch)),
          cpuUsPerImage: mean(bestDirect.map((w) => w.cpuUsPerImage)),
          byBatch,
          disturbed: directAll.filter((w) => w.disturbed).length,
        },
      });
    }
  }
  return rows;
}

const pct = (v) => (finite(v) ? `${fixed(v * 100, 0)} %` : 'n/a');

/** The log line of one measured window. */
export function windowLine(w) {
  const side = w.side === 'served' ? 'served' : `direct b${w.batch}`;
  return (
    `  ${w.kind.padEnd(5)} c${String(w.concurrency).padEnd(3)} r${w.round} ${side.padEnd(10)}: ${fixed(w.imagesPerSec, 1)} img/s, p50 ${fixed(w.latencyMs.p50, 2)} p99 ${fixed(w.latencyMs.p99, 2)} ms, decode ${pct(w.decodeShare)}` +
    `${w.side === 'served' ? `, batch ${fixed(w.meanBatch, 1)}, server CPU ${fixed(w.serverCpuUsPerImage, 0)} µs/img` : `, CPU ${fixed(w.cpuUsPerImage, 0)} µs/img`}, other ${fixed(w.otherProcsPct, 0)}%${w.failed ? `, ${w.failed} failed` : ''}${w.disturbed ? '  ⚠ disturbed' : ''}`
  );
}

/** The log line of one row. */
export function rowLine(r) {
  return `${r.kind.padEnd(5)} c${String(r.concurrency).padEnd(3)}: served ${fixed(r.served.imagesPerSec, 1)} img/s ÷ direct ${fixed(r.direct.imagesPerSec, 1)} (batch ${r.direct.bestBatch}) = ${fixed(r.ratio, 3)}`;
}

const ratioCell = (v) => (finite(v) ? `**${fixed(v, 2)}**` : 'n/a');

export function renderImagesMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const out = sectionHead(results);
  const value = (v) => (typeof v === 'string' && /^\d/.test(v) ? `'${v}'` : v);
  const step = (x) => `{${Object.entries(x).map(([k, v]) => `${k}: ${Array.isArray(v) ? `[${v.map(value).join(', ')}]` : value(v)}`).join(', ')}}`;
  out.push(
    `- **served**: one \`tessera serve\` with \`${results.model?.name}\` (\`${results.model?.file}\`) as tessera.config.yaml serves it: \`preprocess: [${s.preprocess.map(step).join(', ')}]\`, \`postprocess: [${s.postprocess.map(step).join(', ')}]\`, \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`; ORT's default session options${Object.keys(s.sessionOptions ?? {}).length ? ` plus ${JSON.stringify(s.sessionOptions)}` : ''}. The load: autocannon in its own process, C connections, each sending \`POST /v1/predict\` \`{model, inputs: {image: <base64 PNG>}}\` back to back (the same image every time; the server decodes every one, libvips' cache is off).`,
  );
  out.push(
    `- **direct**: [\`bench/lib/images-direct.mjs\`](../bench/lib/images-direct.mjs) in its own process, written from the model's description, not from the server's code: sharp (\`metadata()\` for the size, then \`resize(ceil(48·w/h) ≤ 192, 48, linear)\`, raw RGB; libvips' cache off) → FP32 [N, 3, 48, 192], BGR, (p/255 − 0.5)/0.5, 0 right of the image → \`InferenceSession.run\` (onnxruntime-node ${results.direct?.onnxruntime ?? '?'}) → top-1 of \`0\`/\`180\`. C images in flight as C/B workers, each decoding B images concurrently and running them as one batch; B ∈ ${s.quick ? '{1, C}' : '{1, C/2, C}'} up to ${s.maxBatch}, the best kept (the row names it).`,
  );
  out.push(
    `- Each window: ${s.warmupS} s of the same load (not measured), then ${s.windowS} s measured; ${s.rounds} round${s.rounds === 1 ? '' : 's'} per row${s.rounds > 1 ? ', the side that goes first alternating' : ''}. A window during which processes outside the benchmark used more than ${results.noisyOtherCpuPct}% of a core is measured again (${s.retries} retr${s.retries === 1 ? 'y' : 'ies'}), the least disturbed kept; still disturbed windows are marked ⚠.`,
  );
  out.push(
    `- Before anything is measured, every image of each set (its phrases upright and turned 180°) is classified both ways: ${Object.entries(results.preflight ?? {})
      .map(([k, p]) => `${k}: ${p.agree} of ${p.images} agree (|Δscore| ≤ ${p.maxScoreDiff.toExponential(1)}), ${p.correct} of ${p.images} correct`)
      .join('; ')}.`,
  );
  out.push('');
  out.push('| kind | size (h × w) | what | PNG bytes (load image) | request body bytes |');
  out.push('| --- | --- | --- | ---: | ---: |');
  for (const [k, img] of Object.entries(results.images ?? {})) out.push(`| ${k} | ${img.height} × ${img.width} | ${img.describe} | ${whole(img.loadPngBytes)} | ${whole(img.bodyBytes)} |`);
  out.push('');

  out.push('#### Served ÷ direct');
  out.push('');
  out.push('| kind | concurrency | served img/s | p50 / p99 ms | direct img/s (best batch) | p50 / p99 ms | served ÷ direct | served: mean batch | served: decode share | direct: decode share |');
  out.push('| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |');
  for (const r of results.rows) {
    const warn = (n) => (n > 0 ? ' ⚠' : '');
    out.push(
      `| ${r.kind} | ${r.concurrency} | ${fixed(r.served.imagesPerSec, 1)}${warn(r.served.disturbed)} | ${fixed(r.served.p50Ms, 2)} / ${fixed(r.served.p99Ms, 2)} | ${fixed(r.direct.imagesPerSec, 1)} (${r.direct.bestBatch ?? '?'})${warn(r.direct.disturbed)} | ${fixed(r.direct.p50Ms, 2)} / ${fixed(r.direct.p99Ms, 2)} | ${ratioCell(r.ratio)} | ${fixed(r.served.meanBatch, 1)} | ${pct(r.served.decodeShare)} | ${pct(r.direct.decodeShare)} |`,
    );
  }
  out.push('');
  out.push(
    '*Decode share*: of the time spent decoding + preprocessing and running the model, the part decoding + preprocessing. Served: the server\'s Triton statistics over the window (`GET /v2/models/text-orientation/stats`: `compute_input` — validation, base64, the `image` step — against `compute_infer`, the batch\'s execution counted once per request, as Triton does). Direct: the workers\' own clocks (decoding B images against `session.run` of their batch).',
  );
  out.push('');

  out.push('#### Where a served request\'s time goes');
  out.push('');
  out.push(
    'Means per request over the window, from the server\'s Triton statistics: *total* from the request\'s arrival to its answer, `compute_input` (validation, base64, the `image` step), the batcher\'s queue, `compute_infer` (the batch\'s execution, in the model\'s worker thread), `compute_output` (the `classification` step); what *total* leaves over is HTTP and JSON. Beside them, the direct side\'s decoding and `session.run` per batch of its best B, and its images/s at every B.',
  );
  out.push('');
  out.push('| kind | concurrency | served: total ms | compute_input ms | queue ms | compute_infer ms | compute_output ms | load generator CPU | direct: decode ms / run ms per batch | direct, every batch: img/s |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
  for (const r of results.rows) {
    const x = r.served;
    out.push(
      `| ${r.kind} | ${r.concurrency} | ${fixed(x.totalMs, 2)} | ${fixed(x.inputMs, 2)} | ${fixed(x.queueMs, 2)} | ${fixed(x.inferMs, 2)} | ${fixed(x.outputMs, 3)} | ${fixed(x.loadCpuPct, 0)} % | ${fixed(r.direct.decodeMsPerBatch, 2)} / ${fixed(r.direct.runMsPerBatch, 2)} (B = ${r.direct.bestBatch ?? '?'}) | ${r.direct.byBatch.map((b) => `b${b.batch}: ${fixed(b.imagesPerSec, 0)}`).join(', ')} |`,
    );
  }
  out.push('');

  out.push('#### Caveats');
  out.push('');
  out.push(`- One machine, ${m.cores} cores. The served side shares them with its load generator (autocannon, JSON bodies of up to ${whole(Math.max(...Object.values(results.images ?? {}).map((i) => i.bodyBytes)))} bytes); the direct side has no client to feed. That is part of what serving costs, and it weighs most where the server is CPU-bound.`);
  out.push('- The served side also pays for what the direct one skips: HTTP, JSON parsing of a base64 string, base64 decoding, validation, the batcher\'s queue, the JSON answer. The direct side pays nothing for requests arriving one at a time: its workers hand it whole batches.');
  out.push('- The server runs each ONNX Runtime session in a worker thread of its own (fault isolation): a batch\'s input and output cross a thread boundary, which the direct side, calling `session.run` on its main thread, does not pay.');
  out.push('- CPU time per image is in the results file but not here: ONNX Runtime\'s intra-op threads spin while they wait for work, on both sides, so CPU time follows the wall clock more than the work.');
  out.push('- The best of several direct batch sizes is kept per round, which favours the direct side (the largest of a few noisy figures).');
  out.push('- Latency is the load generator\'s per answer (served) and a batch\'s time from the start of its decoding to its results, for every image of it (direct).');
  const disturbed = results.windows.filter((w) => w.disturbed).length;
  if (disturbed > 0) out.push(`- ${disturbed} of ${results.windows.length} window(s) ran while other processes used > ${results.noisyOtherCpuPct}% of a core (⚠).`);
  const blank = Object.entries(results.images ?? {}).filter(([, i]) => i.glyphs === false).map(([k]) => k);
  if (blank.length > 0) out.push(`- The text rendered no glyphs for ${blank.join(', ')} (no font on this machine): those images decode like the others but show no text, so "correct" above means nothing for them.`);
  for (const sk of results.skipped ?? []) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}
