/**
 * The API key: kept in this tab's sessionStorage only (never localStorage, never in a URL, never
 * logged), entered in a dialog when the server answers 401.
 */
import { byId } from './dom.js';

const STORAGE_KEY = 'tessera.console.apiKey';
const listeners = new Set();

export function currentKey() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) || undefined;
  } catch {
    return undefined;
  }
}

function setKey(key) {
  if (key) sessionStorage.setItem(STORAGE_KEY, key);
  else sessionStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener();
}

export function forgetKey() {
  setKey(undefined);
}

/** Calls `listener` whenever the key changes (entered or forgotten). */
export function onKeyChange(listener) {
  listeners.add(listener);
}

let open;

/**
 * Opens the key dialog (once, however many calls wait on it) and resolves with the key entered,
 * or undefined when the user cancelled.
 */
export function promptForKey(why) {
  if (open) return open;
  const dialog = byId('key-dialog');
  const input = byId('key-input');
  byId('key-why').textContent = why || 'The server asks for a key.';
  input.value = '';
  open = new Promise((resolve) => {
    const done = (key) => {
      dialog.removeEventListener('close', onClose);
      byId('key-cancel').removeEventListener('click', onCancel);
      open = undefined;
      input.value = '';
      if (key) setKey(key);
      resolve(key || undefined);
    };
    const onClose = () => done(dialog.returnValue === 'ok' ? input.value.trim() : undefined);
    const onCancel = () => {
      dialog.returnValue = 'cancel';
      dialog.close();
    };
    dialog.addEventListener('close', onClose);
    byId('key-cancel').addEventListener('click', onCancel);
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
  return open;
}
