/**
 * The Models panel: every model and version with its state, from `GET /v2/repository/index`
 * (admin scope) or, for a key without it, `GET /v2/models/stats` (metadata); the readiness of each
 * model from `GET /v2/models/{model}/ready`.
 */
import { ApiError, api } from './api.js';
import { byId, el, showError, stateClass } from './dom.js';

/** A version state of `/v2/models/{model}/ready` named as the repository index names it (Triton's). */
const TRITON_STATE = { loading: 'LOADING', warming: 'LOADING', ready: 'READY', draining: 'UNLOADING', closed: 'UNAVAILABLE', failed: 'UNAVAILABLE' };

/** `[{ name, versions: [{ version, state, reason }], ready, reasons }]`. */
export async function loadModels() {
  let rows;
  try {
    rows = (await api('/v2/repository/index')).models ?? [];
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
    // no admin scope: the statistics list the models and versions this key may use
    const stats = (await api('/v2/models/stats')).model_stats ?? [];
    rows = stats.map((s) => ({ name: s.name, version: s.version, state: undefined }));
  }
  const byName = new Map();
  for (const r of rows) {
    if (!byName.has(r.name)) byName.set(r.name, { name: r.name, versions: [], ready: undefined, reasons: {} });
    if (r.version !== undefined) byName.get(r.name).versions.push({ version: r.version, state: r.state, reason: r.reason });
  }
  const models = [...byName.values()];
  await Promise.all(
    models.map(async (m) => {
      try {
        const ready = await api(`/v2/models/${encodeURIComponent(m.name)}/ready`, { accept: [503] });
        m.ready = ready.ready === true;
        m.reasons = ready.reasons ?? {};
        for (const v of m.versions) {
          const state = ready.versions?.[v.version];
          v.state ??= state === undefined ? undefined : (TRITON_STATE[state] ?? String(state).toUpperCase());
        }
      } catch (err) {
        // a model only in the repository folder (not served) has no readiness: 404
        m.ready = false;
        m.reasons = { '': err.message };
      }
    }),
  );
  return models;
}

/** Replaces the table's rows (the server-rendered ones, then the last refresh's). */
export function renderModels(models) {
  const body = byId('models-rows');
  const rows = [];
  for (const m of models) {
    const versions = m.versions.length > 0 ? m.versions : [{ version: '—', state: 'UNAVAILABLE', reason: m.reasons[''] }];
    for (const v of versions) {
      const readiness = m.ready ? 'ready' : (v.reason ?? m.reasons[v.version] ?? m.reasons[''] ?? 'not ready');
      rows.push(
        el(
          'tr',
          { dataset: { model: m.name, version: v.version } },
          el('td', { text: m.name }),
          el('td', { text: v.version }),
          el('td', {}, el('span', { class: `state ${stateClass(v.state ?? 'unknown')}`, text: v.state ?? 'unknown' })),
          el('td', { class: 'readiness', text: readiness }),
        ),
      );
    }
  }
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 4, text: 'No models are configured (or this key may use none).' })));
  body.replaceChildren(...rows);
}

export async function refreshModels() {
  const error = byId('models-error');
  try {
    const models = await loadModels();
    renderModels(models);
    showError(error, '');
    return models;
  } catch (err) {
    showError(error, `Models: ${err.message}`);
    return undefined;
  }
}
