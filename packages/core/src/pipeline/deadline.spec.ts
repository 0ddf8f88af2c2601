import { describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { deadlineExceeded, isDeadlineExceeded, parametersTimeout, parseGrpcTimeout, parseRequestTimeout, withinDeadline } from './deadline.js';
import { ServingRequest } from './serving-request.js';

function servingRequest(started = performance.now()): { req: ServingRequest; client: AbortController } {
  const client = new AbortController();
  const req = new ServingRequest({ id: '1', method: 'POST', path: '/', route: '/', endpoint: 'infer', params: {}, headers: {}, ip: '127.0.0.1', started, clientGone: () => client.signal });
  return { req, client };
}

describe(parseRequestTimeout, () => {
  it('should read milliseconds and durations', () => {
    expect(parseRequestTimeout('250')).toBe(250);
    expect(parseRequestTimeout('1.5')).toBe(1.5);
    expect(parseRequestTimeout('1.5s')).toBe(1500);
    expect(parseRequestTimeout(' 2m ')).toBe(120_000);
    expect(parseRequestTimeout('1m30s')).toBe(90_000);
    expect(parseRequestTimeout('0')).toBe(0);
    expect(parseRequestTimeout(['100ms'])).toBe(100);
  });

  it.each(['', 'soon', '-5', '5 parsecs', '1e3', 'Infinity', '9'.repeat(40), '1s-'])('should refuse %j with 400 TESSERA_E_REQUEST_DEADLINE_INVALID', (value) => {
    expect(() => parseRequestTimeout(value)).toThrow(expect.objectContaining({ code: 'TESSERA_E_REQUEST_DEADLINE_INVALID', status: 400 }));
  });

  it('should refuse the header sent twice', () => {
    expect(() => parseRequestTimeout(['1s', '2s'])).toThrow(/sent 2 times/);
  });
});

describe(parseGrpcTimeout, () => {
  it('should read every unit of the gRPC spec', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('100m')).toBe(100);
    expect(parseGrpcTimeout('1500u')).toBeCloseTo(1.5);
    expect(parseGrpcTimeout('2000000n')).toBeCloseTo(2);
    expect(parseGrpcTimeout('99999999S')).toBe(99_999_999_000);
  });

  it.each(['100', '100ms', '1.5S', '123456789S', '-1S', 'S', '10 S', '10s', '10h'])('should refuse %j', (value) => {
    expect(() => parseGrpcTimeout(value)).toThrow(expect.objectContaining({ code: 'TESSERA_E_REQUEST_DEADLINE_INVALID' }));
  });
});

describe(parametersTimeout, () => {
  it("should read Triton's microseconds as milliseconds, 0 and absence meaning none", () => {
    expect(parametersTimeout({ timeout: 30_000 })).toBe(30);
    expect(parametersTimeout({ timeout: 1500 })).toBe(1.5);
    expect(parametersTimeout({ timeout: 0 })).toBeUndefined();
    expect(parametersTimeout(undefined)).toBeUndefined();
    expect(parametersTimeout({ timeout: null })).toBeUndefined();
  });

  it.each([-1, '5', Number.NaN, true])('should refuse %j with 400 TESSERA_E_REQUEST_INVALID', (value) => {
    expect(() => parametersTimeout({ timeout: value })).toThrow(expect.objectContaining({ code: 'TESSERA_E_REQUEST_INVALID' }));
  });
});

describe(withinDeadline, () => {
  const error = () => deadlineExceeded({ source: 'X-Request-Timeout', ms: 10 }, 'during the test');

  it('should reject with the deadline error when the signal aborts for the deadline, without waiting for the work', async () => {
    const ac = new AbortController();
    const never = new Promise<number>(() => {});
    const raced = withinDeadline(never, ac.signal, error);
    ac.abort(error());
    await expect(raced).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED', status: 504, openai: { code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED' } });
  });

  it("should turn the work's own abort failure into the deadline error, and leave a client's abort alone", async () => {
    const ac = new AbortController();
    let fail: (e: Error) => void = () => {};
    const work = new Promise<number>((_, reject) => (fail = reject));
    const raced = withinDeadline(work, ac.signal, error);
    const client = new AbortController();
    const other = withinDeadline(Promise.resolve(7), client.signal, error);
    client.abort();
    expect(await other).toBe(7);
    ac.abort(error());
    fail(new Error('aborted'));
    expect(isDeadlineExceeded(await raced.catch((e: unknown) => e))).toBe(true);
    const gone = new AbortController();
    gone.abort();
    await expect(withinDeadline(Promise.reject(new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'gone')), gone.signal, error)).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED' });
  });
});

describe('ServingRequest deadlines', () => {
  it('should keep the smallest deadline and name what set it', () => {
    const { req } = servingRequest(1000);
    expect(req.deadline).toBeUndefined();
    req.limitDeadline(500, 'models.m.timeout');
    req.limitDeadline(800, 'X-Request-Timeout');
    expect(req.deadline).toBe(1500);
    req.limitDeadline(200, 'grpc-timeout');
    expect(req.deadline).toBe(1200);
    expect(req.deadlineError('during the test').message).toBe("the request's deadline of 200 ms (grpc-timeout) passed during the test");
    req.limitDeadline(2 ** 31, 'parameters.timeout');
    expect(req.deadline).toBe(1200);
  });

  it('should make no signal of its own without a deadline', () => {
    const { req, client } = servingRequest();
    expect(req.workSignal).toBe(client.signal);
    expect(req.pastDeadline).toBe(false);
  });

  it('should abort the work signal at the deadline with the deadline error, and on a client that left with its reason', async () => {
    const { req } = servingRequest();
    req.limitDeadline(20, 'X-Request-Timeout');
    const signal = req.workSignal;
    expect(signal.aborted).toBe(false);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(isDeadlineExceeded(signal.reason)).toBe(true);
    expect(req.pastDeadline).toBe(true);

    const other = servingRequest();
    other.req.limitDeadline(60_000, 'X-Request-Timeout');
    const s2 = other.req.workSignal;
    other.client.abort(new Error('gone'));
    expect(s2.aborted).toBe(true);
    expect(isDeadlineExceeded(s2.reason)).toBe(false);
    other.req.release();
  });

  it('should move the timer when the deadline is lowered after the signal was made, and stop it on release', async () => {
    const { req } = servingRequest();
    req.limitDeadline(60_000, 'models.m.timeout');
    const signal = req.workSignal;
    req.limitDeadline(10, 'parameters.timeout');
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    expect((signal.reason as Error).message).toMatch(/10 ms \(parameters\.timeout\)/);

    const released = servingRequest();
    released.req.limitDeadline(15, 'X-Request-Timeout');
    const s2 = released.req.workSignal;
    released.req.release();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(s2.aborted).toBe(false);
  });

  it('should abort at once a deadline already past', () => {
    const { req } = servingRequest(performance.now() - 100);
    req.limitDeadline(0, 'grpc-timeout');
    expect(req.pastDeadline).toBe(true);
    expect(req.workSignal.aborted).toBe(true);
  });
});
