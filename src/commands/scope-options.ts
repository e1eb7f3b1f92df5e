/**
 * Commander reads a program's options anywhere on the line, so the main command's options
 * (-m, -b, --precision, --device, --threads, ...) would be taken from a subcommand's options of
 * the same names (`esrvid models path --precision fp16`, `esrvid bench -b 1,2`). For the named
 * subcommands the program parses only what comes before the subcommand's name, plus `hoisted`:
 * flags that mean the same to every subcommand, wherever they are written. A subcommand with
 * its own -q or --json hoists nothing.
 */
import type { Command } from 'commander';

export function scopeOptions(program: Command, names: readonly string[], hoisted: ReadonlySet<string> = new Set()): void {
  const parse = program.parseOptions.bind(program);
  program.parseOptions = (args: string[]) => {
    const at = args.findIndex((a) => !a.startsWith('-'));
    if (at < 0 || !names.includes(args[at]!)) return parse(args);
    const rest = args.slice(at + 1);
    // The subcommand written (`models import` is two deep) keeps the flags it declares itself.
    let cmd = program.commands.find((c) => c.name() === args[at]);
    for (const a of rest) {
      if (a.startsWith('-')) continue;
      const sub = cmd?.commands.find((c) => c.name() === a);
      if (!sub) break;
      cmd = sub;
    }
    const own = new Set(cmd?.options.flatMap((opt) => [opt.short, opt.long]) ?? []);
    const hoist = (a: string) => hoisted.has(a) && !own.has(a);
    const before = parse([...args.slice(0, at), ...rest.filter(hoist)]);
    return { operands: [...before.operands, args[at]!], unknown: [...before.unknown, ...rest.filter((a) => !hoist(a))] };
  };
}
