/**
 * The Rollouts panel: `GET /v1/routing` (admin scope) — each model's strategy, versions with their
 * weights, the rollout's state, judgements and history — and buttons that send the routing API's
 * actions (`POST /v1/routing/{model}/{action}`), showing the API's answer or its error message.
 */
import { ApiError, api } from './api.js';
import { byId, el, showError, stateClass } from './dom.js';

/** The buttons, in this order, for the actions a router takes. */
const BUTTONS = [
  ['promote', 'Promote', ''],
  ['rollback', 'Rollback', 'danger'],
  ['pause', 'Pause', ''],
  ['resume', 'Resume', ''],
];
/** When routing cannot be read (no admin scope), the buttons a canary takes are offered anyway: the API decides. */
const BLIND_ACTIONS = ['promote', 'rollback', 'pause'];

/** The last outcome of a button per model: `{ ok, text }`, kept across refreshes. */
const outcomes = new Map();
let render = () => {};

async function act(model, action) {
  try {
    const body = await api(`/v1/routing/${encodeURIComponent(model)}/${encodeURIComponent(action)}`, { method: 'POST', body: { reason: 'from the console' } });
    outcomes.set(model, { ok: true, text: `${action}: done${body.state ? `; the rollout is ${body.state}` : ''}` });
  } catch (err) {
    outcomes.set(model, { ok: false, text: `${action} failed: ${err.message}` });
  }
  await refreshRollouts();
  render();
}

function buttons(model, actions) {
  return el(
    'div',
    { class: 'actions' },
    BUTTONS.filter(([action]) => actions.includes(action)).map(([action, label, cls]) =>
      el('button', { type: 'button', class: cls || undefined, dataset: { action, model }, text: label, onclick: () => void act(model, action) }),
    ),
  );
}

function outcomeNode(model) {
  const o = outcomes.get(model);
  if (!o) return el('p', { class: 'error', role: 'alert', hidden: true });
  return el('p', { class: o.ok ? 'ok-message' : 'error', role: o.ok ? 'status' : 'alert', dataset: { outcome: o.ok ? 'ok' : 'error' }, text: o.text });
}

const pct = (share) => (typeof share === 'number' ? `${Math.round(share * 1000) / 10} %` : '—');

function historyItem(h) {
  const at = typeof h.at === 'string' ? h.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
  if (h.kind === 'judgement') {
    return el('li', {}, `${at} judgement `, el('span', { class: `verdict-${h.verdict}`, text: h.verdict }), ` at step ${h.step} (${h.weight} %): ${h.reason ?? ''}`);
  }
  if (h.kind === 'transition') return el('li', {}, `${at} ${h.from ?? 'new'} → ${h.to} by ${h.by}: ${h.reason ?? ''}`);
  return el('li', { text: `${at} ${JSON.stringify(h)}` });
}

function card(r) {
  const state = r.state ?? (r.actions?.length ? 'active' : undefined);
  const versions = el(
    'table',
    {},
    el('thead', {}, el('tr', {}, el('th', { text: 'Version' }), el('th', { text: 'State' }), el('th', { text: 'Weight' }))),
    el(
      'tbody',
      {},
      (r.versions ?? []).map((v) =>
        el('tr', { dataset: { version: v.version } }, el('td', { text: v.version }), el('td', {}, el('span', { class: `state ${stateClass(v.state)}`, text: v.state })), el('td', { dataset: { weight: v.version }, text: pct(v.weight) })),
      ),
    ),
  );
  const figures = [];
  if (r.baseline !== undefined) figures.push(['baseline', r.baseline], ['canary', r.canary]);
  if (r.step !== undefined) figures.push(['step', `${r.step} of ${r.steps?.length ?? '?'}`]);
  if (r.canaryWeight !== undefined) figures.push(['canary weight', `${r.canaryWeight} %`]);
  if (r.failures !== undefined) figures.push(['failed judgements', `${r.failures} of ${r.threshold}`]);
  const last = r.lastJudgement;
  const history = Array.isArray(r.history) ? r.history.slice(-12).reverse() : [];
  return el(
    'article',
    { class: 'card', dataset: { model: r.model, state: state ?? '' } },
    el('h3', {}, `${r.model} `, state ? el('span', { class: `state ${stateClass(state)}`, dataset: { rolloutState: state }, text: state }) : null, ` ${r.strategy ?? ''}`),
    figures.length ? el('dl', { class: 'figures' }, figures.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v })))) : null,
    versions,
    last ? el('p', {}, 'Last judgement: ', el('span', { class: `verdict-${last.verdict}`, text: last.verdict }), ` — ${last.reason ?? ''}`) : null,
    buttons(r.model, r.actions ?? []),
    outcomeNode(r.model),
    history.length ? el('ol', { class: 'history', reversed: true }, history.map(historyItem)) : null,
  );
}

function blindCard(model) {
  return el('article', { class: 'card', dataset: { model, state: '' } }, el('h3', { text: model }), el('p', { class: 'hint', text: 'Routing not readable with this key.' }), buttons(model, BLIND_ACTIONS), outcomeNode(model));
}

let lastBody;
let lastError;

/** Reads `/v1/routing`; `models` (names from the Models panel) is used when it is refused. */
export async function refreshRollouts() {
  try {
    lastBody = await api('/v1/routing');
    lastError = undefined;
  } catch (err) {
    lastBody = undefined;
    lastError = err;
  }
}

/** Draws the panel from the last read; `knownModels` for the cards offered when routing was refused. */
export function renderRollouts(knownModels = []) {
  render = () => renderRollouts(knownModels);
  const target = byId('rollouts-cards');
  const error = byId('rollouts-error');
  if (lastError) {
    showError(error, `Routing: ${lastError.message}`);
    const refused = lastError instanceof ApiError && (lastError.status === 401 || lastError.status === 403);
    target.replaceChildren(...(refused ? knownModels.map(blindCard) : []));
    return;
  }
  showError(error, '');
  const rollouts = (lastBody?.models ?? []).filter((r) => (r.actions ?? []).length > 0);
  target.replaceChildren(...(rollouts.length ? rollouts.map(card) : [el('p', { class: 'hint', text: 'No rollouts: every model routes by a strategy without actions (latest version).' })]));
}
