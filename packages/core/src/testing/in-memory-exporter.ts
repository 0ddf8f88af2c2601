import type { Exporter } from '../contracts/exporter.js';
import type { ServingEventMap, ServingEvents } from '../contracts/events.js';

type Recorded = { [K in keyof ServingEventMap]: ServingEventMap[K][0][] };

/**
 * An exporter that keeps every serving event in memory (OpenTelemetry's `InMemorySpanExporter` is
 * the model): register it from a test plugin, list it under `exporters:`, and read what the server
 * reported. `reset()` empties it; after `shutdown()` it records nothing more.
 */
export class InMemoryExporter implements Exporter {
  readonly events: Recorded = { request: [], shadow: [], batch: [], modelState: [], generation: [], upstream: [] };
  #hub: ServingEvents | undefined;
  #listeners: [keyof ServingEventMap, (event: unknown) => void][] = [];
  #flushes = 0;
  #shutdown = false;

  attach(events: ServingEvents): void {
    if (this.#shutdown) return;
    this.#hub = events;
    for (const name of Object.keys(this.events) as (keyof ServingEventMap)[]) {
      const listener = (event: unknown): void => void (this.events[name] as unknown[]).push(event);
      this.#listeners.push([name, listener]);
      events.on(name, listener);
    }
  }

  /** How often `forceFlush` was called. */
  get flushes(): number {
    return this.#flushes;
  }

  get isShutdown(): boolean {
    return this.#shutdown;
  }

  async forceFlush(): Promise<void> {
    this.#flushes++;
  }

  /** Forgets what was recorded. */
  reset(): void {
    for (const list of Object.values(this.events)) list.length = 0;
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    for (const [name, listener] of this.#listeners) this.#hub?.off(name, listener);
    this.#listeners = [];
    this.#hub = undefined;
  }
}
