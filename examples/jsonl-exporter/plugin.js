// @ts-check
/**
 * A Tessera plugin with one exporter, `jsonl`, in plain ESM JavaScript: it writes serving events as
 * JSON lines to a file — one line per answered request, executed batch and model state change —
 * for `jq`, a log shipper or a notebook.
 *
 *   exporters:
 *     - prometheus                                  # keep /metrics: listing exporters replaces the default
 *     - { exporter: jsonl, file: ./events.jsonl }
 *
 * Lines are buffered and appended once per `flushIntervalMs` (or when `maxBufferLines` are
 * waiting), on `forceFlush()`, and once more on `shutdown()`. Like every exporter, it never throws
 * into the serving path: a failing file is logged once, and the lines it could not write are
 * counted in `tessera_example_jsonl_dropped_lines_total`.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { definePlugin, systemClock } from '@tessera/core';

/**
 * @typedef {import('@tessera/core').Clock} Clock
 * @typedef {import('@tessera/core').ClockTimer} ClockTimer
 * @typedef {import('@tessera/core').CounterMetric} CounterMetric
 * @typedef {import('@tessera/core').Exporter} Exporter
 * @typedef {import('@tessera/core').ExporterContext} ExporterContext
 * @typedef {import('@tessera/core').ExporterFactory} ExporterFactory
 * @typedef {import('@tessera/core').JSONSchema} JSONSchema
 * @typedef {import('@tessera/core').ServingEventMap} ServingEventMap
 * @typedef {import('@tessera/core').ServingEvents} ServingEvents
 * @typedef {keyof ServingEventMap} EventName
 */

/** The exporter's name under `exporters:`. */
export const EXPORTER_NAME = 'jsonl';

/** Every event the core emits, and those written unless `events` says otherwise. */
export const EVENT_NAMES = /** @type {const} */ (['request', 'shadow', 'batch', 'modelState', 'generation', 'upstream']);
export const DEFAULT_EVENTS = /** @type {const} */ (['request', 'batch', 'modelState']);
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_MAX_BUFFER_LINES = 1000;

export const DROPPED_METRIC = 'tessera_example_jsonl_dropped_lines_total';

/** @type {JSONSchema} */
export const OPTIONS_SCHEMA = {
  type: 'object',
  required: ['file'],
  additionalProperties: false,
  properties: {
    file: { type: 'string', minLength: 1, description: 'The file lines are appended to (created with its folder); relative to the config file.' },
    events: {
      type: 'array',
      items: { type: 'string', enum: [...EVENT_NAMES] },
      minItems: 1,
      uniqueItems: true,
      default: [...DEFAULT_EVENTS],
      description: 'Which serving events to write.',
    },
    flushIntervalMs: { type: 'integer', minimum: 1, default: DEFAULT_FLUSH_INTERVAL_MS, description: 'How long lines may wait in memory.' },
    maxBufferLines: { type: 'integer', minimum: 1, default: DEFAULT_MAX_BUFFER_LINES, description: 'Lines that start a write without waiting for the interval.' },
  },
};

/**
 * @typedef {object} JsonlExporterOptions
 * @property {string} file absolute path
 * @property {readonly EventName[]} [events]
 * @property {number} [flushIntervalMs]
 * @property {number} [maxBufferLines]
 */

/**
 * The exporter. Created by the factory from the config; tests may create it directly with a
 * `FakeClock` (the exporter context has no clock of its own).
 * @implements {Exporter}
 */
export class JsonlExporter {
  #file;
  #events;
  #intervalMs;
  #maxLines;
  #logger;
  #clock;
  #dropped;
  /** @type {string[]} */
  #buffer = [];
  /** The write in flight; writes are chained so that lines keep their order. */
  #writing = Promise.resolve();
  /** @type {ClockTimer | undefined} */
  #timer;
  /** @type {ServingEvents | undefined} */
  #hub;
  /** @type {[EventName, (event: unknown) => void][]} */
  #listeners = [];
  #warned = false;
  /** @type {Promise<void> | undefined} */
  #shutdown;

  /**
   * @param {JsonlExporterOptions} options
   * @param {{ logger: import('pino').Logger, metrics?: import('@tessera/core').MetricRegistrar, clock?: Clock }} parts
   */
  constructor(options, parts) {
    this.#file = options.file;
    this.#events = options.events ?? DEFAULT_EVENTS;
    this.#intervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#maxLines = options.maxBufferLines ?? DEFAULT_MAX_BUFFER_LINES;
    this.#logger = parts.logger;
    this.#clock = parts.clock ?? systemClock;
    /** @type {CounterMetric | undefined} */
    this.#dropped = parts.metrics?.counter({ name: DROPPED_METRIC, help: 'Event lines the jsonl exporter could not write (the file failed).' });
  }

  /** The file lines go to. */
  get file() {
    return this.#file;
  }

  /** @param {ServingEvents} events */
  attach(events) {
    if (this.#shutdown || this.#hub) return;
    this.#hub = events;
    for (const name of this.#events) {
      /** @param {unknown} event */
      const listener = (event) => this.#record(name, event);
      this.#listeners.push([name, listener]);
      events.on(name, /** @type {any} */ (listener));
    }
    this.#timer = this.#clock.setInterval(() => void this.#write(), this.#intervalMs);
    this.#timer.unref?.();
  }

  /** Writes what is buffered now; resolves once it is on disk (or failed, which is logged). */
  async forceFlush() {
    await this.#write();
  }

  /** Stops listening, writes the buffer once and releases the timer. Later calls return the same promise. */
  shutdown() {
    this.#shutdown ??= (async () => {
      for (const [name, listener] of this.#listeners) this.#hub?.off(name, /** @type {any} */ (listener));
      this.#listeners = [];
      this.#hub = undefined;
      if (this.#timer) this.#clock.clearTimer(this.#timer);
      this.#timer = undefined;
      await this.#write();
    })();
    return this.#shutdown;
  }

  /**
   * Runs inside the core's emit, on the request path: only a JSON.stringify and a push.
   * @param {EventName} name
   * @param {unknown} event
   */
  #record(name, event) {
    if (this.#shutdown) return;
    let line;
    try {
      line = JSON.stringify({ time: new Date(this.#clock.now()).toISOString(), event: name, ...(/** @type {object} */ (event)) });
    } catch (err) {
      this.#warnOnce(err, 'an event could not be serialised');
      this.#dropped?.inc();
      return;
    }
    this.#buffer.push(line);
    if (this.#buffer.length >= this.#maxLines) void this.#write();
  }

  /** Appends the buffer to the file, after any write in flight. Never rejects. */
  #write() {
    if (this.#buffer.length === 0) return this.#writing;
    const lines = this.#buffer;
    this.#buffer = [];
    const text = `${lines.join('\n')}\n`;
    this.#writing = this.#writing
      .then(() => mkdir(path.dirname(this.#file), { recursive: true }))
      .then(() => appendFile(this.#file, text))
      .catch((/** @type {unknown} */ err) => {
        this.#dropped?.inc(undefined, lines.length);
        this.#warnOnce(err, `cannot write ${this.#file}; event lines are being dropped`);
      });
    return this.#writing;
  }

  /**
   * @param {unknown} err
   * @param {string} message
   */
  #warnOnce(err, message) {
    if (this.#warned) return;
    this.#warned = true;
    this.#logger.error({ err }, `jsonl exporter: ${message}`);
  }
}

/**
 * The factory: one exporter per `{exporter: jsonl, ...}` entry.
 * @type {ExporterFactory}
 */
export const jsonlExporterFactory = {
  optionsSchema: OPTIONS_SCHEMA,
  create(ctx) {
    const o = ctx.options;
    const file = path.resolve(ctx.configDir, /** @type {string} */ (o['file']));
    /** @type {JsonlExporterOptions} */
    const options = { file };
    if (Array.isArray(o['events'])) options.events = /** @type {EventName[]} */ (o['events']);
    if (typeof o['flushIntervalMs'] === 'number') options.flushIntervalMs = o['flushIntervalMs'];
    if (typeof o['maxBufferLines'] === 'number') options.maxBufferLines = o['maxBufferLines'];
    ctx.logger.info({ file, events: options.events ?? DEFAULT_EVENTS }, 'jsonl exporter writing events');
    return new JsonlExporter(options, { logger: ctx.logger, metrics: ctx.metrics });
  },
};

/** The plugin: what `plugins: [./plugin.js]` loads. */
export default definePlugin({
  name: 'tessera-example-jsonl-exporter',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerExporter(EXPORTER_NAME, jsonlExporterFactory);
  },
});
