import type { Logger } from 'pino';

/** A pino-shaped logger that drops everything: tests should not depend on pino being configured. */
export function silentLogger(): Logger {
  const noop = (): void => undefined;
  const logger: Record<string, unknown> = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop };
  logger.child = () => logger;
  logger.isLevelEnabled = () => false;
  return logger as unknown as Logger;
}

/** One line a `recordingLogger` kept. */
export interface LogRecord {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  msg: string | undefined;
  /** The object logged with it (pino's first argument when it is one), merged with child bindings. */
  fields: Record<string, unknown>;
}

/**
 * A pino-shaped logger that keeps every line in `records`, children included: to test that a
 * plugin logs a failure once, or never logs a secret.
 */
export function recordingLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const make = (bindings: Record<string, unknown>): Logger & { records: LogRecord[] } => {
    const log = (level: LogRecord['level']) => (first?: unknown, second?: unknown): void => {
      const obj = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
      const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : undefined;
      records.push({ level, msg, fields: { ...bindings, ...obj } });
    };
    const logger: Record<string, unknown> = { level: 'trace', fatal: log('fatal'), error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), trace: log('trace'), silent: () => undefined, records };
    logger.child = (more: Record<string, unknown>) => make({ ...bindings, ...more });
    logger.isLevelEnabled = () => true;
    return logger as unknown as Logger & { records: LogRecord[] };
  };
  return make({});
}
