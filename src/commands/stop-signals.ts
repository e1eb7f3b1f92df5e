/** Ctrl-C and SIGTERM for the commands that stop cleanly: the first aborts, a second exits at once (130). */

/** SIGINT/SIGTERM abort `controller` (after `say`, if given); a second one exits. Returns the remover. */
export function onStopSignals(controller: AbortController, say?: (signal: NodeJS.Signals) => void): () => void {
  let stops = 0;
  const handler = (sig: NodeJS.Signals) => {
    if (++stops > 1) process.exit(130);
    say?.(sig);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
