/** What a key gets when neither the config nor an `OTEL_*` variable sets it. */
export const DEFAULT_ENDPOINT = 'http://localhost:4318';
export const DEFAULT_SERVICE_NAME = 'tessera';
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
export const DEFAULT_BATCH = Object.freeze({ maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 5000 });
