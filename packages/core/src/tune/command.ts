import { fileURLToPath } from 'node:url';
import type { TesseraConfig } from '../config/types.js';
import { type TuneArgs, parseTuneArgs } from './options.js';
import { runTune } from './tune.js';

/**
 * `tessera tune` as the CLI runs it: checks the options, runs the sweep with the results on stdout
 * and a line per measurement on stderr. The first Ctrl-C (or SIGTERM) stops the load and the server
 * under test and exits 130; a second one exits at once (the server is killed on exit either way).
 */
export async function tuneCommand(config: TesseraConfig, args: TuneArgs, argv: readonly string[]): Promise<void> {
  const options = parseTuneArgs(args);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\ntessera tune: ${signal}: stopping the load and the server under test\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runTune({
      config,
      options,
      command: ['tessera', ...argv].join(' '),
      cli: fileURLToPath(new URL('../cli.js', import.meta.url)),
      io: { out: (text) => process.stdout.write(`${text}\n`), progress: (text) => process.stderr.write(`${text}\n`) },
      signal: controller.signal,
    });
  } catch (err) {
    if (controller.signal.aborted) process.exit(130);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
