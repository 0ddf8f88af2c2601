/** The plugin registered as `tessera serve` registers it, for the plugin's unit and integration specs. */
import { CORE_VERSION, registerPlugins } from '@tessera/core';
import type { PluginRegistrations } from '@tessera/core';
import plugin from './index.js';
import { recordingLogger } from './otlp-receiver.test-support.js';

type Host = Parameters<typeof registerPlugins>[1];

/** Registers the plugin through the core's loader (schema validation included), as `tessera serve` does. */
export async function register(sections: Record<string, unknown>, logger = recordingLogger()): Promise<{ regs: PluginRegistrations; logger: ReturnType<typeof recordingLogger> }> {
  const host: Host = {
    container: {} as Host['container'], // the plugin binds nothing
    logger: logger as unknown as Host['logger'],
    coreVersion: CORE_VERSION,
    configDir: process.cwd(),
    configFile: '/srv/tessera.config.yaml',
    sections,
  };
  const regs = await registerPlugins([{ plugin, source: '@tessera/tracing' }], host);
  return { regs, logger };
}

/** Runs the close hooks in reverse order, as the server does at shutdown. */
export async function close(regs: PluginRegistrations): Promise<void> {
  for (const hook of [...regs.closeHooks].reverse()) await hook();
}
