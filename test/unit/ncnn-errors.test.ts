import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { parseParam } from '../../src/models/ncnn/param.js';
import { NcnnFixture } from '../helpers/ncnn-fixture.js';

const conv = () => new NcnnFixture()
  .layer('Input', 'in', [], ['data'])
  .layer('Convolution', 'conv7', ['data'], ['out'], '0=3 1=1 5=1 6=9');

function modelError(fn: () => unknown): ModelError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as ModelError;
  }
  throw new Error('expected a ModelError');
}

describe('ncnn converter refuses bad input with a message naming the file and layer', () => {
  it('an unknown layer type', () => {
    const f = new NcnnFixture().layer('Input', 'in', [], ['data']).layer('Deconvolution', 'up9', ['data'], ['out'], '0=3');
    expect(modelError(() => f.onnx()).message).toMatch(/test\.param:4: layer up9 \(Deconvolution\): unsupported layer type/);
  });

  it('a weight blob size that does not match the param', () => {
    const f = new NcnnFixture().layer('Input', 'in', [], ['data']).layer('Convolution', 'conv7', ['data'], ['out'], '0=3 1=3 5=0 6=10');
    expect(modelError(() => f.onnx()).message).toMatch(/layer conv7 \(Convolution\): weight_data_size 10 is not a multiple/);
  });

  it('bytes left over in the .bin', () => {
    const f = conv().weights32(new Array(9).fill(0)).raw([0, 0, 0]).bytes(Buffer.alloc(8));
    expect(modelError(() => f.onnx()).message).toMatch(/test\.bin: 8 bytes left over after the last layer/);
  });

  it('a truncated .bin', () => {
    const f = conv().weights32(new Array(9).fill(0)).raw([0]);
    expect(modelError(() => f.onnx()).message).toMatch(/test\.bin: truncated at layer conv7: bias \(3 float32 values\) needs 12 bytes at offset 40, only 4 left/);
  });

  it('an unknown weight tag', () => {
    const tag = Buffer.alloc(4);
    tag.writeUInt32LE(0xdeadbeef);
    const f = conv().bytes(tag).raw(new Array(12).fill(0));
    expect(modelError(() => f.onnx()).message).toMatch(/layer conv7: weights at offset 0 has unknown tag 0xdeadbeef/);
  });

  it('a fused activation it does not know', () => {
    const f = new NcnnFixture().layer('Input', 'in', [], ['data'])
      .layer('Convolution', 'conv7', ['data'], ['out'], '0=3 1=1 5=0 6=9 9=5').weights32(new Array(9).fill(0));
    expect(modelError(() => f.onnx()).message).toMatch(/conv7 \(Convolution\): fused activation type 5/);
  });

  it('a blob nobody produced', () => {
    const f = new NcnnFixture().layer('Input', 'in', [], ['data']).layer('PReLU', 'p', ['nothere'], ['out'], '0=1').raw([0.1]);
    expect(modelError(() => f.onnx()).message).toMatch(/layer p \(PReLU\): input blob "nothere" is not produced/);
  });

  it('a file that is not an ncnn param, and a wrong layer count', () => {
    expect(modelError(() => parseParam('hello\n', 'x.param')).message).toMatch(/x\.param:1: not an ncnn param file/);
    expect(modelError(() => parseParam('7767517\n3 1\nInput in 0 1 data\n', 'x.param')).message)
      .toMatch(/header says 3 layers but the file has 1/);
  });

  it('a malformed array parameter', () => {
    expect(modelError(() => parseParam('7767517\n1 1\nInput in 0 1 data -23310=3,1.0\n', 'x.param')).message)
      .toMatch(/x\.param:3: layer in: array parameter "-23310=3,1.0" does not hold 3 numbers/);
  });
});
