/**
 * Management requests across the workers of `tessera serve` (`server.workers` > 1): what a worker
 * forwards of the request it received, what it sends back of the answer it ran, and how the
 * primary turns every worker's answer into the one the client gets. Pure functions; the messages
 * are in cluster-protocol.ts, the sending in cluster.ts and cluster-worker.ts.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { BroadcastResult, ManagementAnswer, ManagementRequest, WorkerOutcome } from './cluster-protocol.js';

/** The header that marks a request the primary asked a worker to run; its value is the cluster's secret. */
export const EXECUTE_HEADER = 'x-tessera-cluster-execute';
/** The environment variable that hands the cluster's secret to each worker (read once, then removed). */
export const SECRET_ENV = 'TESSERA_CLUSTER_SECRET';
/** On a broadcast management answer: workers that answered / workers of the server. */
export const WORKERS_HEADER = 'x-tessera-workers';
/**
 * How long the primary waits for one worker to run a management request: a model load with its
 * warm-up can take minutes (a large model, a slow disk), so 10 minutes; a worker that has not
 * answered by then counts as failed.
 */
export const EXECUTE_TIMEOUT_MS = 10 * 60_000;

/** Headers of the client's connection rather than of its request: the worker's `inject` makes its own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'content-length', EXECUTE_HEADER]);
/** The headers of a worker's answer that the client gets (the others are the receiving worker's own: its date, its rate-limit state). */
const ANSWER_HEADERS = ['content-type', 'retry-after', 'tessera-config-generation'];
/** How much of one worker's error message the summary quotes. */
const QUOTE_CHARS = 300;

/** The request a worker forwards: every header but the connection's own, the raw body, its request id (so that every worker logs the same one). */
export function managementRequest(request: { method: string; url: string; id: string; headers: IncomingHttpHeaders; remoteAddress: string | undefined }, body: Buffer | undefined): ManagementRequest {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  headers['x-request-id'] ??= request.id;
  return {
    method: request.method,
    url: request.url,
    headers,
    ...(body && body.length > 0 ? { body: body.toString('base64') } : {}),
    ...(request.remoteAddress ? { remoteAddress: request.remoteAddress } : {}),
  };
}

/** What a worker sends back of the answer it ran. */
export function managementAnswer(status: number, headers: OutgoingHttpHeaders, body: string): ManagementAnswer {
  const kept: Record<string, string> = {};
  for (const name of ANSWER_HEADERS) {
    const value = headers[name];
    if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return { status, headers: kept, body };
}

/** The error code and message of an answer's body (`{"error", "code"}`, or OpenAI's `{"error": {"message", "code"}}`), when it has them. */
export function answerError(answer: ManagementAnswer): { code?: string; message?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const { error, code } = parsed as { error?: unknown; code?: unknown };
  const inner = typeof error === 'object' && error !== null ? (error as { message?: unknown; code?: unknown }) : undefined;
  const out: { code?: string; message?: string } = {};
  const c = inner ? inner.code : code;
  const m = inner ? inner.message : error;
  if (typeof c === 'string') out.code = c;
  if (typeof m === 'string') out.message = m;
  return out;
}

/** `worker 2 (503 TESSERA_E_MODEL_NOT_READY: …)`, `worker 2 (failed: no answer within …)`. */
function describe(o: WorkerOutcome): string {
  if (!o.answer) return `worker ${o.worker} (failed: ${o.error ?? 'no answer'})`;
  const { code, message } = answerError(o.answer);
  const why = [code, message && (message.length > QUOTE_CHARS ? `${message.slice(0, QUOTE_CHARS)}…` : message)].filter(Boolean).join(': ');
  return `worker ${o.worker} (${o.answer.status}${why ? ` ${why}` : ''})`;
}

/**
 * The client's answer to a management request run on every worker (`outcomes`, one per slot),
 * received by worker `origin`: when every worker answered with the same status, the origin's own
 * answer; otherwise (a status that differs, a worker that failed, timed out, died or is not
 * running) a message that says which workers applied it (2xx) and which did not, and what to do.
 * `what` names the request (`POST /v2/repository/models/cls/load`); `primaryPid` is where SIGHUP goes.
 */
export function aggregateOutcomes(what: string, outcomes: WorkerOutcome[], origin: number, primaryPid: number): BroadcastResult {
  const workers = outcomes.length;
  const answered = outcomes.filter((o) => o.answer !== undefined).length;
  const statuses = new Set(outcomes.map((o) => o.answer?.status));
  if (workers > 0 && answered === workers && statuses.size === 1) {
    const own = outcomes.find((o) => o.worker === origin) ?? outcomes[0]!;
    return { ok: true, answer: own.answer!, answered, workers };
  }
  const applied = outcomes.filter((o) => o.answer !== undefined && o.answer.status >= 200 && o.answer.status < 300);
  const not = outcomes.filter((o) => !applied.includes(o));
  const appliedText = applied.length > 0 ? `applied by ${applied.map(describe).join(', ')}` : 'applied by no worker';
  const notText = not.length > 0 ? `; not by ${not.map(describe).join(', ')}` : '';
  const message =
    `${what} did not end alike on the ${workers} workers (server.workers): ${appliedText}${notText}. ` +
    `The workers may now serve different states: retry the request (once every worker is ready again), or put the change in the config and reload it (SIGHUP to the primary process, pid ${primaryPid}), so that every worker serves the same state`;
  return {
    ok: false,
    answered,
    workers,
    message,
    outcomes: outcomes.map((o) => {
      const { code } = o.answer ? answerError(o.answer) : {};
      return { worker: o.worker, ...(o.pid !== undefined ? { pid: o.pid } : {}), ...(o.answer ? { status: o.answer.status } : {}), ...(code ? { code } : {}), ...(o.error ? { error: o.error } : {}) };
    }),
  };
}
