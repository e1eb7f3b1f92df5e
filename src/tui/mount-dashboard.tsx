/**
 * Runs the dashboard on a terminal: events update the model at once (cheap), the screen is
 * redrawn on a fixed clock (and on resize), so a burst of events never costs more than one redraw
 * and elapsed time and ETA keep moving while a slow batch runs.
 */
import { render, useStdin, type Instance } from 'ink';
import type { PipelineEvent } from '../events.js';
import { Dashboard } from './dashboard.js';
import { dashboardView, initialDashboardState, markStopping, reduceDashboard, type DashboardView } from './dashboard-model.js';
import { StopKeys } from './stop-keys.js';

/** 4 redraws a second: smooth enough to watch, invisible next to inference. */
export const REDRAW_MS = 250;

export interface DashboardOptions {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** Called for `q` or Ctrl-C (the terminal is in raw mode, so Ctrl-C is not a signal then). */
  onStop: () => void;
  redrawMs?: number;
  /** Monotonic clock, ms. */
  now?: () => number;
}

export interface DashboardHandle {
  onEvent(e: PipelineEvent): void;
  /** Shows that a stop was asked for and is under way. */
  stopping(): void;
  /** Draws the final frame, leaves it on screen and gives the terminal back (raw mode off, cursor on). */
  close(): Promise<void>;
}

function DashboardApp({ view, width, onStop }: { view: DashboardView; width: number; onStop: () => void }) {
  const { isRawModeSupported } = useStdin();
  return (
    <>
      <Dashboard view={view} width={width} keys={isRawModeSupported} />
      <StopKeys onStop={onStop} active={isRawModeSupported} />
    </>
  );
}

export function mountDashboard(o: DashboardOptions): DashboardHandle {
  const now = o.now ?? (() => performance.now());
  const redrawMs = o.redrawMs ?? REDRAW_MS;
  let state = initialDashboardState();
  // Ink lays out to the terminal's width; columns is 0 or undefined only off a terminal.
  const element = () => <DashboardApp view={dashboardView(state, now())} width={o.stdout.columns || 80} onStop={o.onStop} />;
  let ink: Instance | undefined;
  let exited: Promise<unknown> | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Drawn from the first event on, so the first frame already shows the job.
  const redraw = () => {
    if (ink) return ink.rerender(element());
    ink = render(element(), {
      stdout: o.stdout, stdin: o.stdin, exitOnCtrlC: false, patchConsole: false, maxFps: Math.max(1, Math.round(1000 / redrawMs)),
    });
    exited = ink.waitUntilExit();
    timer = setInterval(redraw, redrawMs);
    timer.unref();
    o.stdout.on('resize', redraw);
  };
  let closed = false;
  return {
    onEvent(e) {
      state = reduceDashboard(state, e, now());
      // Progress waits for the clock; a start, a warning or the end is shown at once.
      if (e.type !== 'progress' || !ink) redraw();
    },
    stopping() {
      state = markStopping(state);
      redraw();
    },
    async close() {
      if (closed || !ink) return;
      closed = true;
      clearInterval(timer);
      o.stdout.off('resize', redraw);
      redraw();
      ink.unmount();
      await exited;
    },
  };
}
