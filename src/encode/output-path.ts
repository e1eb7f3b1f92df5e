/** Where an upscaled video may be written: checked before any work, by the main command and by `esrvid submit`. */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { OutputError, UsageError } from '../errors.js';

/** The output is not the input, its folder exists, and it is not a folder itself nor (without `overwrite`) an existing file. */
export function checkOutputPath(input: string, output: string, overwrite: boolean): void {
  const inAbs = realpathSync(input);
  const outAbs = resolve(output);
  if (inAbs === outAbs || (existsSync(outAbs) && realpathSync(outAbs) === inAbs)) {
    throw new UsageError('the output is the input file', 'write the upscaled video to a new file');
  }
  const dir = dirname(outAbs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new OutputError(`output folder ${dir} does not exist`, 'create it first or choose another path');
  if (existsSync(outAbs)) {
    if (statSync(outAbs).isDirectory()) throw new OutputError(`output ${output} is a directory`, 'give a file name such as out.mp4');
    if (!overwrite) throw new OutputError(`output ${output} already exists`, 'pass -y to overwrite it');
  }
}
