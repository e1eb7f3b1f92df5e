/**
 * `q` or Ctrl-C asks for a stop. Keys are read only when stdin is a terminal (raw mode): with
 * stdin from a pipe or /dev/null, Ctrl-C stays an ordinary SIGINT, which the command handles.
 */
import { useInput } from 'ink';

export function StopKeys({ onStop, active }: { onStop: () => void; active: boolean }) {
  useInput((input, key) => {
    // In raw mode Ctrl-C is a key, not a signal: it must stop the job exactly as SIGINT would.
    if (input === 'q' || (key.ctrl && input === 'c')) onStop();
  }, { isActive: active });
  return null;
}
