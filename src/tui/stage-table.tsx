/**
 * One row per stage: frames/s, how busy it is and how full the queue after it is, as small bars,
 * with the busiest stage marked; then a sparkline of output frames/s over the last minute.
 */
import { Box, Text } from 'ink';
import type { DashboardView, StageView } from './dashboard-model.js';
import { bar, formatRate, sparkline } from './text-bars.js';

const NAME = 7;
const FPS = 8;

function StageRow({ stage, barWidth, bottleneck }: { stage: StageView; barWidth: number; bottleneck: boolean }) {
  const load = stage.load !== undefined ? `${Math.round(stage.load * 100)}%`.padStart(4) : '   -';
  const queue = stage.queue;
  const head = `${stage.name.padEnd(NAME)}${formatRate(stage.fps).padStart(FPS)}  `;
  return (
    <Text wrap="truncate-end">
      {head}
      <Text color={bottleneck ? 'red' : 'cyan'}>{bar(stage.load ?? 0, barWidth, '·')}</Text>
      {` ${load}  `}
      {queue ? (
        <>
          <Text color="blue">{bar(queue[1] > 0 ? queue[0] / queue[1] : 0, barWidth, '·')}</Text>
          {` ${`${queue[0]}/${queue[1]}`.padEnd(5)}`}
        </>
      ) : ' '.repeat(barWidth + 6)}
      {bottleneck ? <Text color="red">{'  ◀ bottleneck'}</Text> : null}
    </Text>
  );
}

export function StageTable({ view, width }: { view: DashboardView; width: number }) {
  // Two bars share what the fixed columns and the bottleneck mark leave.
  const barWidth = Math.max(4, Math.min(20, Math.floor((width - 44) / 2)));
  return (
    <Box flexDirection="column">
      <Text dimColor wrap="truncate-end">{`${'stage'.padEnd(NAME)}${'f/s'.padStart(FPS)}  ${'busy'.padEnd(barWidth + 7)}queue`}</Text>
      {view.stages.map((s) => (
        <StageRow key={s.name} stage={s} barWidth={barWidth} bottleneck={view.bottleneck === s.name && !view.done} />
      ))}
    </Box>
  );
}

/** Scale-out: where the job's segments are and which workers are connected. */
export function ClusterPanel({ view }: { view: DashboardView }) {
  const c = view.cluster!;
  const parts = [`${c.done}/${c.segments} done`, `${c.active} active`, `${c.waiting} waiting`, ...(c.failed > 0 ? [`${c.failed} failed`] : [])];
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end"><Text dimColor>{'segments'.padEnd(9)}</Text><Text color="green">{bar(c.segments ? c.done / c.segments : 0, 20, '·')}</Text> {parts.join(' · ')}</Text>
      <Text wrap="truncate-end"><Text dimColor>{'workers'.padEnd(9)}</Text>{c.workers.length ? `${c.workers.length}: ${c.workers.join(', ')}` : <Text color="yellow">none connected (start one with esrvid worker)</Text>}</Text>
    </Box>
  );
}

export function RateSparkline({ view, width }: { view: DashboardView; width: number }) {
  // Labels are sized for the widest case (formatRate gives at most 4 characters), so the line
  // does not jitter; at 80 columns the whole minute fits.
  const n = Math.max(10, Math.min(view.history.length, width - 'fps, 60 s '.length - ' max 0000'.length));
  const values = view.history.slice(-n);
  const maxLabel = ` max ${formatRate(Math.max(0, ...values.map((v) => v ?? 0)))}`;
  return (
    <Text wrap="truncate-end">
      <Text dimColor>{`fps, ${n} s `.padEnd(10)}</Text>
      <Text color="green">{sparkline(values)}</Text>
      <Text dimColor>{maxLabel}</Text>
    </Text>
  );
}
