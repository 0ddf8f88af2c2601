/* global document, Node */
/** Small DOM helpers: elements are built with textContent only, so nothing from the server is parsed as HTML. */

/** `el('td', { class: 'x', dataset: { model: 'm' } }, 'text', child)`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The element with this id (throws when the page lacks it: a template and script out of step). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** Shows `message` in an error element, or hides it when `message` is empty. */
export function showError(node, message) {
  node.textContent = message ?? '';
  node.hidden = !message;
}

/** The state badge class of a Triton repository state or a Tessera version state. */
export function stateClass(state) {
  const s = String(state).toLowerCase();
  if (s === 'ready' || s === 'succeeded') return 'ok';
  if (s === 'unavailable' || s === 'failed' || s === 'closed') return 'bad';
  return 'wait';
}
