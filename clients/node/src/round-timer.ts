// When the sender's rounds start: every flushIntervalMs, or, for a multiple of 60 s, just after each minute boundary
// (minute-aligned, as in the Python producer). The timer is unref'd: alone it never keeps the process alive.
/** A minute-aligned round starts this long after the boundary: a metric stamped just before it is buffered. */
const ALIGNED_ROUND_DELAY_MS = 250;
const MINUTE_MS = 60_000;

export class RoundTimer {
  private timer: NodeJS.Timeout | undefined;

  /** `round(before)`: start a round; with `before` (epoch seconds), of the metrics whose bucket starts before it. */
  constructor(
    private readonly intervalMs: number,
    private readonly round: (before?: number) => unknown,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    // unref: the timer alone never keeps the process alive; beforeExit flushes what it leaves behind.
    if (this.intervalMs % MINUTE_MS === 0) this.scheduleAlignedRound();
    else this.timer = setInterval(() => this.round(), this.intervalMs).unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A round of a multiple of 60 s is minute-aligned (as in the Python producer): just after each boundary it sends
   * the finished minutes only, one part per series-minute; flush, exit and the wake threshold still send all. */
  private scheduleAlignedRound(): void {
    const interval = this.intervalMs;
    const wait = interval - (Date.now() % interval) + ALIGNED_ROUND_DELAY_MS;
    this.timer = setTimeout(() => {
      const now = Date.now();
      void this.round((now - (now % interval)) / 1000);
      if (this.timer !== undefined) this.scheduleAlignedRound();
    }, wait).unref();
  }
}
