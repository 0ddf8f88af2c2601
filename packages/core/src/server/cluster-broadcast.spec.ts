import { describe, expect, it } from 'vitest';
import { EXECUTE_HEADER, aggregateOutcomes, answerError, managementAnswer, managementRequest } from './cluster-broadcast.js';
import type { ManagementAnswer, WorkerOutcome } from './cluster-protocol.js';

const WHAT = 'POST /v2/repository/models/cls/load';
const json = (status: number, body: unknown, headers: Record<string, string> = {}): ManagementAnswer => ({ status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) });
const ok = (worker: number, body: unknown = {}): WorkerOutcome => ({ worker, pid: 100 + worker, answer: json(200, body) });

describe(aggregateOutcomes, () => {
  describe('having every worker answer with the same status', () => {
    it("should answer with the receiving worker's own answer, counting every worker", () => {
      const result = aggregateOutcomes(WHAT, [ok(1, { from: 1 }), ok(2, { from: 2 }), ok(3, { from: 3 })], 2, 7);
      expect(result).toEqual({ ok: true, answer: json(200, { from: 2 }), answered: 3, workers: 3 });
    });

    it('should pass an error every worker gave alike through (status and body)', () => {
      const conflict = (worker: number): WorkerOutcome => ({ worker, answer: json(409, { error: `cannot pause (worker ${worker})`, code: 'CANARY_E_ACTION_CONFLICT' }) });
      const result = aggregateOutcomes('POST /v1/routing/cls/pause', [conflict(1), conflict(2)], 1, 7);
      expect(result.ok).toBe(true);
      if (result.ok) expect([result.answer.status, JSON.parse(result.answer.body)]).toEqual([409, { error: 'cannot pause (worker 1)', code: 'CANARY_E_ACTION_CONFLICT' }]);
    });
  });

  describe('having workers that did not end alike', () => {
    it('should say which workers applied it and which did not, with their status and code, and what to do', () => {
      const result = aggregateOutcomes(WHAT, [ok(1), { worker: 2, pid: 102, answer: json(500, { error: "model 'cls' v1: no such file", code: 'TESSERA_E_MODEL_LOAD' }) }], 1, 7);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.message).toBe(
        `${WHAT} did not end alike on the 2 workers (server.workers): applied by worker 1 (200); not by worker 2 (500 TESSERA_E_MODEL_LOAD: model 'cls' v1: no such file). ` +
          'The workers may now serve different states: retry the request (once every worker is ready again), or put the change in the config and reload it (SIGHUP to the primary process, pid 7), so that every worker serves the same state',
      );
      expect([result.answered, result.workers]).toEqual([2, 2]);
      expect(result.outcomes).toEqual([
        { worker: 1, pid: 101, status: 200 },
        { worker: 2, pid: 102, status: 500, code: 'TESSERA_E_MODEL_LOAD' },
      ]);
    });

    it('should count a worker that failed, died, timed out or is not running as not applying it, and not as answering', () => {
      const result = aggregateOutcomes(WHAT, [ok(1), { worker: 2, pid: 102, error: 'worker 2 (pid 102) exited' }, { worker: 3, error: 'not running (it is being replaced)' }], 1, 7);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect([result.answered, result.workers]).toEqual([1, 3]);
      expect(result.message).toContain('applied by worker 1 (200); not by worker 2 (failed: worker 2 (pid 102) exited), worker 3 (failed: not running (it is being replaced))');
      expect(result.outcomes[2]).toEqual({ worker: 3, error: 'not running (it is being replaced)' });
    });

    it('should fail even when the one worker that answered is the receiving one', () => {
      const result = aggregateOutcomes(WHAT, [{ worker: 1, error: 'no answer within 600000 ms' }, ok(2)], 2, 7);
      expect(result.ok).toBe(false);
    });

    it('should say that no worker applied it when none answered 2xx, quoting OpenAI-shaped and non-JSON bodies too', () => {
      const result = aggregateOutcomes(
        WHAT,
        [
          { worker: 1, answer: json(503, { error: { message: 'not ready', code: 'TESSERA_E_MODEL_NOT_READY' } }) },
          { worker: 2, answer: { status: 502, headers: {}, body: '<html>bad gateway</html>' } },
          { worker: 3, answer: json(404, { error: 'x'.repeat(400), code: 'TESSERA_E_MODEL_NOT_FOUND' }) },
        ],
        1,
        7,
      );
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.message).toContain('applied by no worker; not by worker 1 (503 TESSERA_E_MODEL_NOT_READY: not ready), worker 2 (502), worker 3 (404 TESSERA_E_MODEL_NOT_FOUND: ');
      // a long message is cut
      expect(result.message).toContain(`${'x'.repeat(300)}…)`);
      expect(result.message).not.toContain('x'.repeat(301));
    });

    it('should not call a server without workers consistent', () => {
      expect(aggregateOutcomes(WHAT, [], 1, 7).ok).toBe(false);
    });
  });
});

describe(managementRequest, () => {
  it("should keep the request's headers but the connection's own and the internal one, add its id, and carry the raw body as base64", () => {
    const forwarded = managementRequest(
      {
        method: 'POST',
        url: '/v1/routing/cls/pause?x=1',
        id: 'r-1',
        headers: { host: 'h:1', connection: 'keep-alive', 'content-length': '2', 'transfer-encoding': 'chunked', 'content-type': 'application/json', authorization: 'Bearer k', 'x-api-key': 'k', 'x-forwarded-for': '10.0.0.1', [EXECUTE_HEADER]: 'forged' },
        remoteAddress: '127.0.0.1',
      },
      Buffer.from('{}'),
    );
    expect(forwarded).toEqual({
      method: 'POST',
      url: '/v1/routing/cls/pause?x=1',
      headers: { host: 'h:1', 'content-type': 'application/json', authorization: 'Bearer k', 'x-api-key': 'k', 'x-forwarded-for': '10.0.0.1', 'x-request-id': 'r-1' },
      body: Buffer.from('{}').toString('base64'),
      remoteAddress: '127.0.0.1',
    });
  });

  it("should keep the client's request id, and send no body when there was none", () => {
    const forwarded = managementRequest({ method: 'POST', url: '/u', id: 'r-2', headers: { 'x-request-id': 'mine' }, remoteAddress: undefined }, Buffer.alloc(0));
    expect(forwarded).toEqual({ method: 'POST', url: '/u', headers: { 'x-request-id': 'mine' } });
  });
});

describe(managementAnswer, () => {
  it('should keep the headers the client needs only', () => {
    expect(managementAnswer(503, { 'content-type': 'application/json', 'retry-after': '1', 'tessera-config-generation': '3', 'x-ratelimit-remaining': '9', date: 'now' }, '{}')).toEqual({
      status: 503,
      headers: { 'content-type': 'application/json', 'retry-after': '1', 'tessera-config-generation': '3' },
      body: '{}',
    });
  });
});

describe(answerError, () => {
  it('should read both error shapes, and nothing from other bodies', () => {
    expect(answerError(json(400, { error: 'bad', code: 'A_E_B_C' }))).toEqual({ code: 'A_E_B_C', message: 'bad' });
    expect(answerError(json(400, { error: { message: 'bad', code: 'A_E_B_C' } }))).toEqual({ code: 'A_E_B_C', message: 'bad' });
    expect(answerError(json(200, {}))).toEqual({});
    expect(answerError(json(200, [1]))).toEqual({});
    expect(answerError({ status: 200, headers: {}, body: 'null' })).toEqual({});
    expect(answerError({ status: 200, headers: {}, body: 'text' })).toEqual({});
  });
});
