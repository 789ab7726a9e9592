// The package's one kind of timer: unref'd (it never keeps the process alive) and guarded (a
// fault in its work is reported once, never thrown into the host's event loop).
import { reportInternalError } from './diag';

export class UnrefTimer {
  private handle: NodeJS.Timeout | undefined;
  private repeating = false;
  /** The interval it repeats at (0 when not repeating). */
  every = 0;
  /** performance.now() when a one-shot is due (Infinity when none). */
  dueAt = Infinity;
  private readonly fire: () => void;

  constructor(where: string, run: () => void) {
    this.fire = () => {
      if (!this.repeating) this.reset();
      try {
        run();
      } catch (e) {
        reportInternalError(where, e);
      }
    };
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** Runs every `ms`, replacing whatever was scheduled. */
  repeat(ms: number): void {
    this.stop();
    this.repeating = true;
    this.every = ms;
    this.handle = setInterval(this.fire, ms);
    this.handle.unref();
  }

  /** Runs once at `dueAt` (a performance.now() time), replacing whatever was scheduled. */
  once(delayMs: number, dueAt: number): void {
    this.stop();
    this.dueAt = dueAt;
    this.handle = setTimeout(this.fire, delayMs);
    this.handle.unref();
  }

  stop(): void {
    if (this.handle) clearTimeout(this.handle); // clears an interval as well
    this.reset();
  }

  private reset(): void {
    this.handle = undefined;
    this.repeating = false;
    this.every = 0;
    this.dueAt = Infinity;
  }
}
