/**
 * The dashboard: a pure function of the view (see dashboard-model.ts) and the terminal width, so
 * it is tested by rendering given views. Live, it shows progress and stages; once done, only the
 * header, warnings and summary stay on screen.
 */
import { Box, Text } from 'ink';
import type { DashboardView } from './dashboard-model.js';
import { Header, Warnings } from './header.js';
import { ProgressPanel } from './progress-panel.js';
import { Summary } from './summary.js';
import { ClusterPanel, RateSparkline, StageTable } from './stage-table.js';

export interface DashboardProps {
  view: DashboardView;
  width: number;
  /** Whether keys can be read (stdin is a terminal): otherwise only Ctrl-C (a signal) stops. */
  keys: boolean;
}

export function Dashboard({ view, width, keys }: DashboardProps) {
  return (
    <Box flexDirection="column" width={width}>
      <Header start={view.start} width={width} />
      <Warnings warnings={view.warnings} hidden={view.hiddenWarnings} width={width} />
      {view.done ? (
        <Summary done={view.done} />
      ) : (
        <>
          <Box marginTop={1}><ProgressPanel view={view} width={width} /></Box>
          <Box marginTop={1} flexDirection="column">
            {view.cluster ? <ClusterPanel view={view} /> : <StageTable view={view} width={width} />}
            <RateSparkline view={view} width={width} />
          </Box>
          <Box marginTop={1}>
            {view.stopping ? (
              <Box flexDirection="column">
                <Text color="yellow" wrap="truncate-end">stopping: finishing the batch in flight and closing the encoder</Text>
                <Text dimColor wrap="truncate-end">{keys ? 'q or Ctrl-C again: quit at once' : 'Ctrl-C again: quit at once'}</Text>
              </Box>
            ) : (
              <Text dimColor wrap="truncate-end">{keys ? 'q or Ctrl-C: stop' : 'Ctrl-C: stop'}</Text>
            )}
          </Box>
        </>
      )}
    </Box>
  );
}
