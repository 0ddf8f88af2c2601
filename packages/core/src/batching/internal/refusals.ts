/** The errors a batcher refuses or drops a request with (not the backend's). */
import { TesseraError } from '../../errors.js';
import { isDeadlineExceeded } from '../../pipeline/deadline.js';

/** 503s carry it: the work was refused for load, not for its content, so a later retry may succeed. */
export const RETRY_AFTER: Readonly<Record<string, string>> = { 'retry-after': '1' };

export function cancelled(): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the connection before the answer was ready');
}

export function draining(model: string, version: string): TesseraError {
  return new TesseraError('TESSERA_E_MODEL_NOT_READY', `${model} v${version} is draining`, { headers: { ...RETRY_AFTER } });
}

export function queueFull(model: string, version: string, queued: number, maxQueueSize: number): TesseraError {
  return new TesseraError('TESSERA_E_QUEUE_FULL', `${model} v${version}: the batching queue is full (${queued} requests waiting, batching.maxQueueSize ${maxQueueSize}); retry later`, {
    headers: { ...RETRY_AFTER },
  });
}

/**
 * Why a request whose signal aborted leaves: its deadline passed while it waited (503
 * TESSERA_E_QUEUE_TIMEOUT: no work was done, a retry may succeed), or while it ran (the deadline's
 * 504: the result is dropped), or its client left (499).
 */
export function abortedError(reason: unknown, model: string, version: string, phase: 'queued' | 'running', waitedMs: number): TesseraError {
  if (!isDeadlineExceeded(reason)) return cancelled();
  // "the request's deadline of 250 ms (X-Request-Timeout) passed", without where it passed
  const passed = reason.message.replace(/ passed .*$/, ' passed');
  if (phase === 'queued') {
    return new TesseraError('TESSERA_E_QUEUE_TIMEOUT', `${model} v${version}: ${passed} while it waited in the batching queue (${Math.round(waitedMs)} ms); retry later`, { headers: { ...RETRY_AFTER } });
  }
  return new TesseraError(reason.code, `${model} v${version}: ${passed} during its execution; the result is dropped`, { openai: reason.openai ?? {} });
}

export function queueTimeout(model: string, version: string, waitedMs: number, timeoutMs: number): TesseraError {
  return new TesseraError('TESSERA_E_QUEUE_TIMEOUT', `${model} v${version}: the request waited ${Math.round(waitedMs)} ms in the batching queue, over its timeout of ${timeoutMs} ms; retry later`, {
    headers: { ...RETRY_AFTER },
  });
}

export function shed(model: string, version: string, predictedMs: number, budgetMs: number): TesseraError {
  return new TesseraError(
    'TESSERA_E_QUEUE_SHED',
    `${model} v${version}: the request would take about ${Math.round(predictedMs)} ms, over batching.latencyBudgetMs ${budgetMs}; shed early, retry later`,
    { headers: { ...RETRY_AFTER } },
  );
}

/** A `parameters` value the batcher reads (`priority`, `timeout`) that it cannot use. */
export function invalidParameter(message: string): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_INVALID', message);
}
