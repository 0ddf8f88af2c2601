import type { HookRequest, HookResponse, InferHookContext } from '../contracts/hook.js';

/**
 * A HookRequest for tests (a GET of `/v2/models/model` by 127.0.0.1). Override any part. The
 * headers hooks add with `setResponseHeader` are kept in `responseHeaders`.
 */
export function testHookRequest(overrides: Partial<HookRequest> = {}): HookRequest & { responseHeaders: Record<string, string> } {
  const responseHeaders: Record<string, string> = {};
  return {
    id: 'req-1',
    method: 'GET',
    path: '/v2/models/model',
    route: '/v2/models/:model',
    endpoint: 'metadata',
    params: { model: 'model' },
    headers: {},
    ip: '127.0.0.1',
    locals: new Map(),
    setResponseHeader: (name, value) => void (responseHeaders[name.toLowerCase()] = value),
    responseHeaders,
    ...overrides,
  };
}

/** An InferHookContext for tests (a tensor request to `model` version 1 over OIP v2). */
export function testInferHookContext(overrides: Partial<InferHookContext> = {}): InferHookContext {
  return {
    ...testHookRequest({ method: 'POST', path: '/v2/models/model/infer', route: '/v2/models/:model/infer', endpoint: 'infer' }),
    protocol: 'v2',
    kind: 'tensor',
    model: 'model',
    version: '1',
    ...overrides,
  };
}

/** A HookResponse for tests (a 200 answer to `testInferHookContext()`, 5 ms). */
export function testHookResponse(overrides: Partial<HookResponse> = {}): HookResponse {
  return { ...testInferHookContext(), status: 200, code: undefined, durationMs: 5, ...overrides };
}
