/** Whether the live dashboard can be shown, or progress must be plain lines. */

export interface OutputMode {
  json?: boolean;
  quiet?: boolean;
  /** false with --no-tui. */
  tui?: boolean;
}

/** As Ink judges it: under CI Ink holds every frame until exit, so a dashboard would show nothing live. */
function inCi(env: NodeJS.ProcessEnv): boolean {
  return ['CI', 'CONTINUOUS_INTEGRATION'].some((k) => k in env && env[k] !== '0' && env[k] !== 'false');
}

/**
 * The dashboard needs stdout to be a terminal that understands cursor movement; pipes, files, CI
 * logs and TERM=dumb get plain lines instead (on stderr, so stdout stays clean).
 */
export function dashboardWanted(mode: OutputMode, stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (mode.json || mode.quiet || mode.tui === false) return false;
  return !!stdout.isTTY && env.TERM !== 'dumb' && !inCi(env);
}
