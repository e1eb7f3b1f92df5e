import { describe, expect, it } from 'vitest';
import { parseFrameRange, parseTimecode } from '../../src/commands/parse.js';

describe('option parsers', () => {
  it('times in seconds or [hh:]mm:ss[.mmm]', () => {
    expect(parseTimecode('90')).toBe(90);
    expect(parseTimecode('90.25')).toBe(90.25);
    expect(parseTimecode('1:30.5')).toBe(90.5);
    expect(parseTimecode('01:02:03.250')).toBeCloseTo(3723.25, 9);
    expect(() => parseTimecode('1:75')).toThrow(/seconds must be below 60/);
    expect(() => parseTimecode('-3')).toThrow(/is not a time/);
    expect(() => parseTimecode('abc', '--start')).toThrow(/--start "abc" is not a time/);
  });

  it('frame ranges a:b (b excluded) and a: (to the end)', () => {
    expect(parseFrameRange('10:20')).toEqual([10, 20]);
    expect(parseFrameRange('5:')).toEqual([5, undefined]);
    expect(() => parseFrameRange('20:10')).toThrow(/is empty/);
    expect(() => parseFrameRange('3-4')).toThrow(/is not a range/);
  });
});
