/* global document, window */
/**
 * The console's page script: shows the panels the server-rendered page leaves hidden, then
 * refreshes models, metrics and rollouts every `data-refresh-ms` (2 s by default).
 */
import { refreshMetrics, resizeCharts } from './charts.js';
import { byId } from './dom.js';
import { currentKey, forgetKey, onKeyChange, promptForKey } from './key.js';
import { refreshModels } from './models.js';
import { refreshRollouts, renderRollouts } from './rollouts.js';
import { initTryIt, setTryModels } from './try-it.js';

const refreshMs = Number(document.body.dataset.refreshMs) || 2000;
/** The model list changes seldom: read it every few refreshes. */
const MODELS_EVERY = 3;

let models = [];
let tick = 0;
let timer;

function showKeyStatus() {
  byId('key-status').textContent = currentKey() ? 'key entered (this tab only)' : 'no key';
  byId('key-forget').disabled = !currentKey();
}

async function refresh() {
  clearTimeout(timer);
  try {
    if (tick % MODELS_EVERY === 0) {
      const fresh = await refreshModels();
      if (fresh) {
        models = fresh;
        setTryModels(models);
      }
    }
    tick++;
    await Promise.all([refreshMetrics(), refreshRollouts()]);
    renderRollouts(models.map((m) => m.name));
  } finally {
    // one pending refresh at most, however many ran at once (a key entered during one)
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), refreshMs);
  }
}

function start() {
  for (const id of ['metrics', 'rollouts', 'try', 'key-bar']) byId(id).hidden = false;
  document.getElementById('ssr-notice')?.remove();
  byId('key-enter').addEventListener('click', () => void promptForKey('Enter an API key for this server.'));
  byId('key-forget').addEventListener('click', () => forgetKey());
  onKeyChange(() => {
    showKeyStatus();
    tick = 0;
    void refresh();
  });
  showKeyStatus();
  initTryIt();
  window.addEventListener('resize', () => resizeCharts());
  void refresh();
}

start();
