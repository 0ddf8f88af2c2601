/**
 * The server-side part of the page: `public/index.html` with the model list filled in when the
 * request may read it, so that the read-only part works without JavaScript. Everything inserted is
 * escaped here, once.
 */

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** One row of `GET /v2/repository/index`'s `models`. */
export interface IndexRow {
  name: string;
  version?: string;
  state: string;
  reason?: string;
}

/** What the page is rendered with. */
export interface PageData {
  /** The console's path (`console.path`), for asset URLs. */
  base: string;
  /** Milliseconds between the page's refreshes. */
  refreshMs: number;
  /** The models, when the request was allowed to list them; else why not (the API's message). */
  models: { rows: readonly IndexRow[] } | { refused: string };
}

const STATE_CLASS: Record<string, string> = { READY: 'ok', LOADING: 'wait', UNLOADING: 'wait', UNAVAILABLE: 'bad' };

/** The model table's body rows (the page's script replaces them with its own as it refreshes). */
export function modelRows(rows: readonly IndexRow[]): string {
  if (rows.length === 0) return '<tr><td colspan="4">No models are configured.</td></tr>';
  return rows
    .map((r) => {
      const cls = STATE_CLASS[r.state] ?? 'wait';
      return `<tr data-model="${escapeHtml(r.name)}"><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.version ?? '—')}</td><td><span class="state ${cls}">${escapeHtml(r.state)}</span></td><td>${escapeHtml(r.reason ?? (r.state === 'READY' ? 'ready' : ''))}</td></tr>`;
    })
    .join('\n');
}

/** Fills the template's `{{base}}`, `{{refreshMs}}`, `<!--tessera:models-->` and `<!--tessera:notice-->`. */
export function renderPage(template: string, data: PageData): string {
  const notice =
    'rows' in data.models
      ? '<p class="notice" id="ssr-notice">Rendered by the server. Live metrics, rollouts and “Try it” need JavaScript.</p>'
      : `<p class="notice warn" id="ssr-notice">The model list needs a key (${escapeHtml(data.models.refused)}): enable JavaScript and enter a key.</p>`;
  const rows = 'rows' in data.models ? modelRows(data.models.rows) : '<tr><td colspan="4">Enable JavaScript and enter a key to see the models.</td></tr>';
  return template
    .replaceAll('{{base}}', escapeHtml(data.base))
    .replaceAll('{{refreshMs}}', escapeHtml(data.refreshMs))
    .replace('<!--tessera:notice-->', () => notice)
    .replace('<!--tessera:models-->', () => rows);
}
