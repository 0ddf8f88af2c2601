/** The plugin registered as `tessera serve` registers it, for the plugin's unit and integration specs. */
import type { PluginRegistrations } from '@tessera/core';
import { registerTestPlugins } from '@tessera/core/testing';
import type { Logger } from 'pino';
import plugin from './index.js';
import { recordingLogger } from './otlp-receiver.test-support.js';

/** Registers the plugin through the core's loader (schema validation included), as `tessera serve` does. */
export async function register(sections: Record<string, unknown>, logger = recordingLogger()): Promise<{ regs: PluginRegistrations; logger: ReturnType<typeof recordingLogger> }> {
  const regs = await registerTestPlugins([plugin], { sections, logger: logger as unknown as Logger, configFile: '/srv/tessera.config.yaml' });
  return { regs, logger };
}

/** Runs the close hooks in reverse order, as the server does at shutdown. */
export async function close(regs: PluginRegistrations): Promise<void> {
  for (const hook of [...regs.closeHooks].reverse()) await hook();
}
