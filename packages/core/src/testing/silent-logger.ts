import type { Logger } from 'pino';

/** A pino-shaped logger that drops everything: tests should not depend on pino being configured. */
export function silentLogger(): Logger {
  const noop = (): void => undefined;
  const logger: Record<string, unknown> = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop };
  logger.child = () => logger;
  logger.isLevelEnabled = () => false;
  return logger as unknown as Logger;
}
