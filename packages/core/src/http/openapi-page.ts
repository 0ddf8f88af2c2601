/**
 * Swagger UI plugins of the /docs page. They run in the browser: @fastify/swagger-ui writes their
 * source into the page's initializer script, so they use nothing outside their own bodies (no
 * imports, no module variables) — only the page's globals.
 */

/** What the plugins use of Swagger UI's system (Immutable.js maps where Swagger UI keeps state). */
interface SwaggerSystem {
  authSelectors: { authorized: () => { getIn: (path: string[]) => unknown } | undefined };
  specActions: { updateSpec: (text: string) => unknown };
}
type Action = (...args: unknown[]) => unknown;

/** The page's globals the plugins use (the core compiles without the DOM library). */
interface PageGlobals {
  SwaggerUIBundle: { plugins: { DownloadUrl: (system: unknown) => unknown } };
  fetch: typeof fetch;
  location: { href: string };
  setTimeout: (fn: () => void, ms: number) => unknown;
}

/** A Swagger UI plugin's answer (what the plugins here return of it). */
type PluginAnswer = { statePlugins?: Record<string, { wrapActions: Record<string, (original: Action) => Action> }> };

/** Swagger UI's own spec download (the default plugins list has it; `plugins` replaces that list). */
function downloadUrl(system: unknown): PluginAnswer {
  return (globalThis as unknown as PageGlobals).SwaggerUIBundle.plugins.DownloadUrl(system) as PluginAnswer;
}

/**
 * Loads the server's whole document (`/openapi.json`, with the served models' tensors as examples)
 * in place of the page's own (`/docs/json`: the routes only, open like the page), once the page's
 * document is shown and again after each Authorize or Logout — with the key given to Authorize in
 * a header (never in a URL) and no cookies. Without a key it is loaded when `auth` is off; with
 * `auth` on, the page shows the routes and the Authorize button until a key is given.
 */
function serverDocument(system: SwaggerSystem): PluginAnswer {
  const page = globalThis as unknown as PageGlobals;
  let started = false;
  const load = (): void => {
    const authorized = system.authSelectors.authorized();
    const bearer = authorized?.getIn(['bearer', 'value']);
    const apiKey = authorized?.getIn(['apiKey', 'value']);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (typeof bearer === 'string' && bearer !== '') headers['authorization'] = `Bearer ${bearer}`;
    else if (typeof apiKey === 'string' && apiKey !== '') headers['x-api-key'] = apiKey;
    page
      .fetch(new URL('/openapi.json', page.location.href), { headers, credentials: 'omit' })
      .then((res) => (res.ok ? res.text() : undefined))
      .then((text) => {
        if (text !== undefined) system.specActions.updateSpec(text);
      })
      .catch(() => undefined);
  };
  const later = (original: Action): Action => (...args) => {
    const result = original(...args);
    page.setTimeout(load, 0);
    return result;
  };
  return {
    statePlugins: {
      spec: {
        wrapActions: {
          updateSpec: (original: Action): Action => (...args) => {
            const result = original(...args);
            if (!started) {
              started = true;
              page.setTimeout(load, 0);
            }
            return result;
          },
        },
      },
      auth: { wrapActions: { authorize: later, logout: later } },
    },
  };
}

/** `uiConfig.plugins` of the /docs page. */
export const docsPagePlugins: ((system: SwaggerSystem) => PluginAnswer)[] = [downloadUrl, serverDocument];
