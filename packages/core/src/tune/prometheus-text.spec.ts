import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sumSamples } from './prometheus-text.js';

describe(parsePrometheusText, () => {
  it('should read samples with their labels and skip comments', () => {
    const text = [
      '# HELP tessera_batch_size Samples per batch.',
      '# TYPE tessera_batch_size histogram',
      'tessera_batch_size_bucket{model="m",version="1",le="+Inf"} 4',
      'tessera_batch_size_sum{model="m",version="1"} 30',
      'tessera_batch_size_sum{model="other \\"x\\"",version="1"} 7',
      'tessera_config_generation 2',
      'not a sample line',
    ].join('\n');
    const samples = parsePrometheusText(text);
    expect(samples).toContainEqual({ name: 'tessera_batch_size_bucket', labels: { model: 'm', version: '1', le: '+Inf' }, value: 4 });
    expect(samples).toContainEqual({ name: 'tessera_batch_size_sum', labels: { model: 'other "x"', version: '1' }, value: 7 });
    expect(sumSamples(samples, 'tessera_batch_size_sum')).toBe(37);
    expect(sumSamples(samples, 'tessera_batch_size_sum', (l) => l['model'] === 'm')).toBe(30);
    expect(sumSamples(samples, 'tessera_config_generation')).toBe(2);
  });
});
