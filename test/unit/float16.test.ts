import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16, floatToHalfBits } from '../../src/models/onnx/float16.js';

describe('float16 conversions', () => {
  it('round-trips every one of the 65536 half values (NaNs stay NaN)', () => {
    const bytes = new Uint8Array(65536 * 2);
    for (let h = 0; h < 65536; h++) {
      bytes[h * 2] = h & 0xff;
      bytes[h * 2 + 1] = h >> 8;
    }
    const floats = decodeFloat16(bytes, 0, 65536);
    for (let h = 0; h < 65536; h++) {
      const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nan) expect(Number.isNaN(floats[h])).toBe(true);
      else expect(floatToHalfBits(floats[h]!)).toBe(h);
    }
  });

  it('rounds to nearest even and saturates to infinity', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(floatToHalfBits(65520)).toBe(0x7c00);
    expect(floatToHalfBits(-(2 ** -25))).toBe(0x8000);
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001);
    expect(Array.from(encodeFloat16(Float32Array.of(0.5, -2)))).toEqual([0x00, 0x38, 0x00, 0xc0]);
  });
});
