/* global uPlot */
/**
 * The Live metrics panel: a scrape of `GET /metrics` every refresh; between two scrapes each
 * model's request rate, p50/p99 latency, mean batch size and queue depth (../lib/metrics.js, the
 * same module the unit tests check), drawn with uPlot.
 */
import { api } from './api.js';
import { byId, el, showError } from './dom.js';
import { formatNumber, parsePrometheus, ratesBetween, snapshotModels } from '../lib/metrics.js';

/** Points kept per chart: ten minutes at the default refresh. */
const KEEP = 300;

const FIGURES = [
  ['rate', 'requests/s', 1],
  ['errorRate', '5xx/s', 1],
  ['p50Ms', 'p50 ms', 1],
  ['p99Ms', 'p99 ms', 1],
  ['meanBatchSize', 'mean batch', 1],
  ['queueDepth', 'queue', 0],
];

let previous;
const cards = new Map();

const gap = (v) => (Number.isFinite(v) ? v : null);

function chartWidth(node) {
  return Math.max(300, (node.clientWidth || 480) - 4);
}

function makeChart(node, title, series) {
  const opts = {
    title,
    width: chartWidth(node),
    height: 150,
    // at least a minute wide: a single point would otherwise span years
    scales: { x: { time: true, range: (_u, min, max) => (max - min < 60 ? [max - 60, max] : [min, max]) } },
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false }))],
    axes: [{}, { size: 50 }],
    legend: { live: false },
  };
  return new uPlot(opts, [[], ...series.map(() => [])], node);
}

function cardFor(model) {
  let card = cards.get(model);
  if (card) return card;
  const values = {};
  const figures = el(
    'dl',
    { class: 'figures' },
    FIGURES.map(([key, label]) => {
      values[key] = el('dd', { dataset: { metric: key }, text: '—' });
      return el('div', {}, el('dt', { text: label }), values[key]);
    }),
  );
  const rateNode = el('div', { class: 'chart', dataset: { chart: 'rate' } });
  const latencyNode = el('div', { class: 'chart', dataset: { chart: 'latency' } });
  const root = el('article', { class: 'card', dataset: { model, points: '0' } }, el('h3', { text: model }), figures, rateNode, latencyNode);
  byId('metrics-cards').append(root);
  const data = { t: [], rate: [], p50: [], p99: [] };
  card = {
    root,
    values,
    data,
    rate: makeChart(rateNode, 'requests/s', [['requests/s', '#2458c6']]),
    latency: makeChart(latencyNode, 'latency (ms)', [
      ['p50', '#1f7a3a'],
      ['p99', '#b42318'],
    ]),
  };
  cards.set(model, card);
  return card;
}

function update(model, rates, at) {
  const card = cardFor(model);
  for (const [key, , digits] of FIGURES) {
    const v = rates[key];
    card.values[key].textContent = formatNumber(v, digits);
    card.values[key].dataset.value = Number.isFinite(v) ? String(v) : '';
  }
  const d = card.data;
  d.t.push(at / 1000);
  d.rate.push(gap(rates.rate));
  d.p50.push(gap(rates.p50Ms));
  d.p99.push(gap(rates.p99Ms));
  for (const series of Object.values(d)) if (series.length > KEEP) series.splice(0, series.length - KEEP);
  card.rate.setData([d.t, d.rate]);
  card.latency.setData([d.t, d.p50, d.p99]);
  card.root.dataset.points = String(d.t.length);
}

/** One scrape; the first one only sets the baseline for the next. */
export async function refreshMetrics() {
  const error = byId('metrics-error');
  try {
    const text = await api('/metrics', { text: true });
    const scrape = snapshotModels(parsePrometheus(text), Date.now());
    const rates = ratesBetween(previous, scrape);
    previous = scrape;
    for (const [model, r] of rates) update(model, r, scrape.at);
    if (previous && rates.size === 0 && scrape.models.size === 0 && cards.size === 0) {
      byId('metrics-cards').replaceChildren(el('p', { class: 'hint', dataset: { empty: '' }, text: 'No model has served a request yet.' }));
    } else {
      byId('metrics-cards').querySelector('[data-empty]')?.remove();
    }
    showError(error, '');
  } catch (err) {
    showError(error, `Metrics: ${err.message}`);
  }
}

/** Charts follow the width of their cards. */
export function resizeCharts() {
  for (const card of cards.values()) {
    for (const chart of [card.rate, card.latency]) chart.setSize({ width: chartWidth(chart.root.parentNode), height: 150 });
  }
}
