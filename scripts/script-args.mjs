/**
 * The measurement scripts' command lines (scripts/gpu-*.mjs): `--name value` pairs into an object,
 * and comma lists. Kept to what those scripts need; the CLI itself uses commander.
 */

/** `--name value` pairs of this process's arguments: { name: 'value' }. */
export function optionValues(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.flatMap((a, i) => (a.startsWith('--') ? [[a.slice(2), argv[i + 1]]] : [])));
}

/** A comma list (`v`, else `fallback`), trimmed, without empty items. */
export const list = (v, fallback) => (v ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
