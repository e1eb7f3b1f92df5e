/** Progress bar, elapsed and ETA, and the output's throughput now (smoothed) and on average. */
import { Box, Text } from 'ink';
import type { DashboardView } from './dashboard-model.js';
import { formatDuration, formatRate, progressBar } from './text-bars.js';

export function ProgressPanel({ view, width }: { view: DashboardView; width: number }) {
  const { frames, totalFrames, fraction } = view;
  // Reused frames come out without inference: said, so a jump in the rate has its reason on screen.
  const reused = view.reusedFrames > 0 ? ` (${view.reusedFrames} reused)` : '';
  const count = `${totalFrames ? `${frames}/${totalFrames}` : frames} frames${reused}`;
  const percent = fraction !== undefined ? `${(fraction * 100).toFixed(1).padStart(5)}%` : '';
  const [filled, track] = progressBar(fraction ?? 0, Math.max(10, width - count.length - percent.length - 3));
  const eta = view.etaMs !== undefined ? formatDuration(view.etaMs) : view.stopping ? '-' : totalFrames ? '--:--' : 'unknown (no frame count)';
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        {fraction !== undefined ? <><Text color="green">{filled}</Text><Text dimColor>{track}</Text> </> : null}
        {count} {percent}
      </Text>
      <Text wrap="truncate-end">
        <Text dimColor>elapsed</Text> {formatDuration(view.elapsedMs)}   <Text dimColor>ETA</Text> {eta}
      </Text>
      <Text wrap="truncate-end">
        <Text dimColor>output</Text> {formatRate(view.fpsNow)} fps now, {formatRate(view.fpsAvg)} avg   {formatRate(view.mpsNow)} MP/s now, {formatRate(view.mpsAvg)} avg
      </Text>
    </Box>
  );
}
