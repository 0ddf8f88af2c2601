import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../errors.js';
import { recordingLogger } from '../testing/silent-logger.js';
import { RestartSupervisor } from './restart-supervisor.js';

/** A worker whose death the test decides. */
class TestWorker {
  static started = 0;
  readonly id = ++TestWorker.started;
  released = false;
  #listener: ((reason: string) => void) | undefined;
  onDeath(listener: (reason: string) => void): void {
    this.#listener = listener;
  }
  die(reason = 'exited (code 1)'): void {
    this.#listener?.(reason);
  }
  release(): Promise<void> {
    this.released = true;
    return Promise.resolve();
  }
}

const policy = { initialDelayMs: 20, maxDelayMs: 80, resetAfterMs: 60_000 };

function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error('timed out'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('RestartSupervisor', () => {
  it('should answer 503 with Retry-After while restarting, release the dead worker and adopt a new one', async () => {
    const logger = recordingLogger();
    const first = new TestWorker();
    const started: TestWorker[] = [];
    const supervisor = new RestartSupervisor<TestWorker>(
      { label: 'm v1', instance: 'instance 1 of 1', policy, noun: 'test worker', unit: 'job', logger, start: () => Promise.resolve(started[started.push(new TestWorker()) - 1]!) },
      first,
    );
    expect(supervisor.current).toBe(first);
    first.die();
    expect(supervisor.current).toBeUndefined();
    expect(supervisor.failure).toMatch(/^restarting: exited \(code 1\) \(1 failure in a row, next attempt in \d+ ms\)$/);
    const err = supervisor.restartingError(new Error('m v1: gone'));
    expect(isTesseraError(err) && err.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
    expect(err.message).toBe('m v1: its test worker died while running the job (gone); retry after 1 s');
    await until(() => supervisor.state === 'up');
    expect(first.released).toBe(true);
    expect(supervisor.current).toBe(started[0]);
    expect(logger.records.map((r) => r.msg)).toContain('m v1 (instance 1 of 1): the new test worker serves again');
    await supervisor.release();
    expect(started[0]!.released).toBe(true);
  });

  it('should fail an attempt whose ready check throws, release that worker, and back off before the next', async () => {
    const logger = recordingLogger();
    const started: TestWorker[] = [];
    let refuse = 2;
    const supervisor = new RestartSupervisor<TestWorker>(
      {
        label: 'm v1',
        instance: 'instance 1 of 1',
        policy,
        noun: 'test worker',
        unit: 'job',
        logger,
        start: () => Promise.resolve(started[started.push(new TestWorker()) - 1]!),
        ready: () => (refuse-- > 0 ? Promise.reject(new Error('warm-up failed')) : Promise.resolve()),
      },
      new TestWorker(),
    );
    supervisor.current!.die();
    await until(() => supervisor.state === 'up');
    expect(started).toHaveLength(3);
    expect(started[0]!.released && started[1]!.released).toBe(true);
    const failures = logger.records.filter((r) => /the restart failed: warm-up failed; next attempt in/.test(r.msg ?? ''));
    expect(failures.map((r) => r.fields['retryInMs'])).toEqual([40, 80]);
    await supervisor.release();
  });

  it('should cancel a pending restart on release and release what an attempt in progress started', async () => {
    let resolveStart: ((w: TestWorker) => void) | undefined;
    const late = new TestWorker();
    const supervisor = new RestartSupervisor<TestWorker>(
      { label: 'm v1', instance: 'instance 1 of 1', policy, noun: 'test worker', unit: 'job', logger: recordingLogger(), start: () => new Promise((r) => (resolveStart = r)) },
      new TestWorker(),
    );
    supervisor.current!.die();
    await until(() => resolveStart !== undefined);
    const released = supervisor.release();
    resolveStart!(late);
    await released;
    expect(late.released).toBe(true);
    expect(supervisor.state).toBe('released');
    expect(supervisor.current).toBeUndefined();
  });
});
