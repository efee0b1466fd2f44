// Errors of the tracefs source. Each says what went wrong and, in `hint`, what an operator can
// do about it, because the usual causes (tracefs not mounted, missing privileges, a kernel
// without the tracepoint) are fixed outside the agent.

export type TracefsErrorCode =
  | 'NOT_AVAILABLE' // the kernel has no tracefs (CONFIG_FTRACE / CONFIG_TRACING off)
  | 'NOT_MOUNTED' // tracefs exists but is not mounted and the agent may not mount it
  | 'NOT_PERMITTED' // EACCES / EPERM on a tracefs operation
  | 'EVENT_MISSING' // none of the requested trace events exists in this kernel
  | 'BAD_FORMAT' // an event's `format` file lacks what the decoder needs
  | 'INSTANCE_BUSY' // the instance is held open by another process
  | 'IO'; // any other I/O failure

export class TracefsError extends Error {
  readonly code: TracefsErrorCode;
  /** What to do about it, for the operator. */
  readonly hint: string;

  constructor(code: TracefsErrorCode, message: string, hint: string, options?: { cause?: unknown }) {
    super(`${message} (hint: ${hint})`, options);
    this.name = 'TracefsError';
    this.code = code;
    this.hint = hint;
  }
}

export const PERMISSION_HINT =
  'run the agent as root, or with CAP_DAC_OVERRIDE (tracefs files are root-owned, mode 0640/0750), ' +
  'or mount tracefs with gid=<group> and run the agent in that group; creating an instance also ' +
  'needs write access to instances/. Mounting tracefs needs CAP_SYS_ADMIN. CAP_PERFMON and ' +
  'CAP_BPF do not grant tracefs access. Kernel lockdown in confidentiality mode blocks tracefs ' +
  'entirely. In Kubernetes: run the container as uid 0 (no added capability is needed) with a ' +
  'hostPath mount of /sys/kernel/tracing whose instances/ directory is writable.';

/** Node's errno code of an error, if any. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

/** Wraps a failed file operation on `path` into a TracefsError with a hint. */
export function fsFailure(err: unknown, action: string, path: string): TracefsError {
  const code = errnoCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new TracefsError('NOT_PERMITTED', `cannot ${action} ${path}: ${detail}`, PERMISSION_HINT, {
      cause: err,
    });
  }
  if (code === 'EBUSY') {
    return new TracefsError(
      'INSTANCE_BUSY',
      `cannot ${action} ${path}: ${detail}`,
      'another process holds files of this tracefs instance open (a second agent with the same ' +
        'instance name?); stop it or configure a different instance name',
      { cause: err },
    );
  }
  return new TracefsError('IO', `cannot ${action} ${path}: ${detail}`, 'check the path and the kernel log', {
    cause: err,
  });
}
