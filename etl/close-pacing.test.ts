import { describe, expect, it } from 'vitest';
import { CLOSE_SHARE, isDraining, noteDraining, restAfter } from './close-pacing.ts';

describe('close pacing', () => {
  it('rests a close so that it keeps CLOSE_SHARE of the wall clock while the process drains, and not at all otherwise', () => {
    const rest = restAfter(8, true);
    expect(8 / (8 + rest)).toBeCloseTo(CLOSE_SHARE, 10); // the close's share of each slice + rest
    expect(restAfter(8, false)).toBe(0);
    expect(restAfter(1000, true)).toBe(250); // capped: a slice stretched by slow reads
  });

  it('counts the process as draining for a second after the last record staged', () => {
    noteDraining(10_000);
    expect(isDraining(10_500)).toBe(true);
    expect(isDraining(11_001)).toBe(false);
  });
});
