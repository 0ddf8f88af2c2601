import { describe, expect, it } from 'vitest';
import { describeVersionPolicy, selectVersions } from './version-policy.js';

describe(selectVersions, () => {
  it('should select every version with all, in numeric order', () => {
    expect(selectVersions(['10', '2', '1'], 'all')).toEqual({ selected: ['1', '2', '10'], missing: [] });
  });

  it('should select the N highest version numbers with latest (not the last in text order)', () => {
    expect(selectVersions(['1', '2', '9', '10'], { latest: 1 })).toEqual({ selected: ['10'], missing: [] });
    expect(selectVersions(['1', '2', '9', '10'], { latest: 2 })).toEqual({ selected: ['9', '10'], missing: [] });
    expect(selectVersions(['3'], { latest: 5 })).toEqual({ selected: ['3'], missing: [] });
  });

  it('should select specific versions and report those that are not there', () => {
    expect(selectVersions(['1', '2', '3'], { specific: [3, 1] })).toEqual({ selected: ['1', '3'], missing: [] });
    expect(selectVersions(['1', '2'], { specific: [2, 7, 5] })).toEqual({ selected: ['2'], missing: ['5', '7'] });
    expect(selectVersions([], { specific: [1] })).toEqual({ selected: [], missing: ['1'] });
  });
});

describe(describeVersionPolicy, () => {
  it('should write each policy as the config does', () => {
    expect([describeVersionPolicy('all'), describeVersionPolicy({ latest: 2 }), describeVersionPolicy({ specific: [1, 3] })]).toEqual(['all', 'latest: 2', 'specific: [1, 3]']);
  });
});
