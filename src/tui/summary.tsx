/** What is left on screen when the job is done: frames, time, average rate, size and where. */
import { Box, Text } from 'ink';
import { formatBytes } from '../commands/format.js';
import type { DashboardView } from './dashboard-model.js';
import { formatRate, formatSeconds } from './text-bars.js';

export function Summary({ done }: { done: NonNullable<DashboardView['done']> }) {
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        <Text color="green" bold>done</Text>  {done.frames} frames in {formatSeconds(done.elapsedMs)} ({formatRate(done.fps)} fps average), {formatBytes(done.bytes)}
      </Text>
      {done.damagedFrames > 0 && <Text color="yellow" wrap="wrap">{done.damagedFrames} damaged frame(s) in the source could not be decoded</Text>}
      {(done.reusedFrames ?? 0) > 0 && <Text dimColor wrap="wrap">{done.reusedFrames} frame(s) identical to the frame before: written from its upscaled output, not upscaled again</Text>}
      {/* The full path wraps rather than being cut: it is what the user needs to copy. */}
      <Text wrap="wrap"><Text dimColor>written to</Text> {done.path}</Text>
    </Box>
  );
}
