/* global document, FileReader */
/**
 * The "Try it" panel: an image (a file, or a sample drawn here) sent to `POST /v1/predict` as
 * base64 in the model's BYTES input (its name from `GET /v2/models/{model}`), and the predictions.
 */
import { api } from './api.js';
import { byId, el, showError } from './dom.js';

let image; // { base64, dataUrl }

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error('the file could not be read'));
    reader.readAsDataURL(file);
  });
}

function useImage(dataUrl) {
  image = { dataUrl, base64: dataUrl.slice(dataUrl.indexOf(',') + 1) };
  const preview = byId('try-preview');
  preview.src = dataUrl;
  preview.hidden = false;
}

/** A text line as PP-OCR's classifiers see one: dark text on white, 48 px high. */
function sample() {
  const canvas = document.createElement('canvas');
  canvas.width = 192;
  canvas.height = 48;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#111';
  ctx.font = '28px sans-serif';
  ctx.textBaseline = 'middle';
  ctx.fillText('Tessera 42', 8, 25);
  return canvas.toDataURL('image/png');
}

/** Fills the model picker (keeps the choice). */
export function setTryModels(models) {
  const select = byId('try-model');
  const chosen = select.value;
  const names = models.map((m) => m.name);
  if (names.join('\n') === [...select.options].map((o) => o.value).join('\n')) return;
  select.replaceChildren(...names.map((name) => el('option', { value: name, text: name })));
  if (names.includes(chosen)) select.value = chosen;
}

async function imageInput(model) {
  const meta = await api(`/v2/models/${encodeURIComponent(model)}`);
  const input = (meta.inputs ?? []).find((i) => i.datatype === 'BYTES');
  if (!input) throw new Error(`model '${model}' takes no image (no BYTES input): send it tensors with /v2/models/${model}/infer`);
  return input.name;
}

function showResult(body) {
  const table = byId('try-predictions');
  const raw = byId('try-raw');
  const rows = Array.isArray(body.predictions) ? (Array.isArray(body.predictions[0]) ? body.predictions[0] : body.predictions) : [];
  table.tBodies[0].replaceChildren(...rows.map((p) => el('tr', {}, el('td', { class: 'label', text: p.label }), el('td', { class: 'score', text: typeof p.score === 'number' ? p.score.toFixed(4) : p.score }))));
  table.hidden = rows.length === 0;
  raw.textContent = JSON.stringify(body, null, 2);
  raw.hidden = false;
}

async function send(event) {
  event.preventDefault();
  const error = byId('try-error');
  const button = byId('try-send');
  const model = byId('try-model').value;
  if (!model) return showError(error, 'Pick a model.');
  if (!image) return showError(error, 'Choose an image file or use the sample.');
  button.disabled = true;
  try {
    const name = await imageInput(model);
    const body = await api('/v1/predict', { method: 'POST', body: { model, inputs: { [name]: image.base64 } } });
    showError(error, '');
    showResult(body);
  } catch (err) {
    showError(error, `Predict: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

export function initTryIt() {
  byId('try-form').addEventListener('submit', (e) => void send(e));
  byId('try-sample').addEventListener('click', () => useImage(sample()));
  byId('try-file').addEventListener('change', async (e) => {
    const file = e.target.files?.[0];
    if (!file) return;
    try {
      useImage(await readFile(file));
      showError(byId('try-error'), '');
    } catch (err) {
      showError(byId('try-error'), err.message);
    }
  });
}
