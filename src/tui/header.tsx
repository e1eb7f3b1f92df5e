/** The job's identity (what, where, how) and the warnings, shown in place above the live part. */
import { Box, Text } from 'ink';
import type { StartEvent } from '../events.js';
import { truncate, truncateStart, wrapWords } from './text-bars.js';

export function Header({ start, width }: { start?: StartEvent; width: number }) {
  if (!start) return <Text wrap="truncate-end">esrvid: starting…</Text>;
  const inSize = start.inputSize.join('x');
  const outSize = start.outputSize.join('x');
  // Paths share what the sizes and arrows leave; their file names (the ends) are kept.
  const fixed = 'esrvid  '.length + ` ${inSize} → `.length + ` ${outSize}`.length;
  const room = Math.max(8, width - fixed);
  const inRoom = Math.min(start.input.length, Math.max(Math.floor(room / 2), room - start.output.length));
  const input = truncateStart(start.input, inRoom);
  const output = truncateStart(start.output, room - input.length);
  const setup = start.distributed
    ? [start.model, start.precision, 'scale-out: segments on esrvid workers'].join(' · ')
    : [start.model, start.device, start.precision, `batch ${start.batch}`, ...((start.lanes ?? 1) > 1 ? [`${start.lanes} lanes`] : []), ...(start.engine === 'native' ? ['fused kernel'] : []), `tile ${start.tile > 0 ? start.tile : 'off'}`].join(' · ');
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold>esrvid</Text>  {input} <Text dimColor>{inSize}</Text> → <Text bold>{output}</Text> <Text dimColor>{outSize}</Text>
      </Text>
      <Text wrap="truncate-end" dimColor>{truncate(setup + (start.modelReason ? ` (${start.modelReason})` : ''), width)}</Text>
    </Box>
  );
}

export function Warnings({ warnings, hidden, width }: { warnings: string[]; hidden: number; width: number }) {
  if (warnings.length === 0) return null;
  return (
    <Box flexDirection="column">
      {hidden > 0 && <Text color="yellow" wrap="truncate-end">! {hidden} earlier warning{hidden > 1 ? 's' : ''}</Text>}
      {/* Wrapped with a hanging indent, not cut: a warning is worth its full text. */}
      {warnings.flatMap((w) => wrapWords(w, Math.max(10, width - 2)).map((line, i) => (
        <Text key={`${w}\n${i}`} color="yellow">{i === 0 ? '! ' : '  '}{line}</Text>
      )))}
    </Box>
  );
}
