/**
 * esrvid's few error classes. The CLI's one handler prints `message` (and `hint`) on one line and
 * exits with `exitCode`; only BugError (anything unexpected) may show a stack, and only with --debug.
 */

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  bug: 1,
  usage: 2,
  input: 3,
  model: 4,
  output: 5,
  external: 6,
  network: 7,
  device: 8,
  redis: 9,
  jobFailed: 10,
  cancelled: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class EsrvidError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, opts: { exitCode: ExitCode; hint?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode;
    this.hint = opts.hint;
  }
  /** The single line shown to the user. */
  oneLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

/** Wrong options or arguments. */
export class UsageError extends EsrvidError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint });
  }
}

/** The input video cannot be used as it is. */
export class InputError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.input, hint, cause });
  }
}

/** A model is unknown, damaged or cannot be converted. */
export class ModelError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.model, hint, cause });
  }
}

/** The output cannot be written. */
export class OutputError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.output, hint, cause });
  }
}

/** The npm registry (the only network esrvid uses) failed. */
export class NetworkError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.network, hint, cause });
  }
}

/**
 * The asked-for device (--device cuda/webgpu) cannot run the model: a library, the driver or the
 * GPU is missing (the message says which, the hint how to install it), or it ran out of memory
 * even for the smallest tiles.
 */
export class DeviceError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.device, hint, cause });
  }
}

/** Scale-out: the Redis server that coordinates the job cannot be reached. */
export class RedisError extends EsrvidError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.redis, hint, cause });
  }
}

/** Scale-out: the job failed (a segment failed on every attempt); finished segments are kept. */
export class JobFailedError extends EsrvidError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.jobFailed, hint });
  }
}

/** A child process (ffmpeg, ffprobe) failed. Keeps the command and its stderr tail. */
export class ExternalProcessError extends EsrvidError {
  readonly command: string;
  readonly stderrTail: string;
  constructor(message: string, command: string, stderrTail: string, hint?: string) {
    super(message, { exitCode: ExitCode.external, hint });
    this.command = command;
    this.stderrTail = stderrTail;
  }
}

/** The user (or a signal) stopped the job. */
export class CancelledError extends EsrvidError {
  constructor(message = 'cancelled') {
    super(message, { exitCode: ExitCode.cancelled });
  }
}
