// Exit hooks: nothing buffered is lost when the process ends.
// - beforeExit (the event loop ran dry): flush, bounded by exitFlushTimeoutMs; the process then exits as it would have.
// - SIGTERM / SIGINT: flush, bounded; then, unless the application listens for the signal itself (its handlers
//   decide), re-raise it with the default disposition so the process dies of the signal as it would have. A server
//   keeps serving while it flushes: what it accepted meanwhile goes to the exit sender first, synchronously, so no
//   metric can be accepted between that hand-over and the end. A second signal during the flush ends the process at
//   once, with one ERROR line counting what was not sent.
// - process.exit() (no async work possible any more): hand what is left to a short-lived child process that sends it
//   synchronously, bounded by the same timeout.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { compiledUrl } from "./location.js";
import { debuglog } from "node:util";
import { error } from "./log.js";

const debug = debuglog("metricbatch");
const SIGNALS = ["SIGTERM", "SIGINT"] as const;
type ExitSignal = (typeof SIGNALS)[number];

/** What a producer offers the exit hooks. */
export interface ExitParticipant {
  readonly queueUrl: string | undefined;
  readonly exitFlushTimeoutMs: number;
  readonly handleSignals: boolean;
  /** Metrics accepted and not yet sent, published or dropped. */
  readonly pending: number;
  flushForExit(timeoutMs?: number): Promise<void>;
  /** Everything not yet acknowledged, encoded as wire-v1 message bodies; the producer stops. */
  drainForExit(): string[];
}

const participants = new Set<ExitParticipant>();
let installed = false;
let signalsInstalled = false;
let signalling = false;

export function registerProducer(producer: ExitParticipant): void {
  participants.add(producer);
  if (!installed) {
    installed = true;
    process.on("beforeExit", onBeforeExit);
    process.on("exit", onExit);
  }
  if (producer.handleSignals && !signalsInstalled) {
    signalsInstalled = true;
    for (const signal of SIGNALS) process.on(signal, onSignal);
  }
}

export function unregisterProducer(producer: ExitParticipant): void {
  participants.delete(producer);
}

function flushAll(): Promise<unknown> {
  return Promise.all([...participants].filter((p) => p.pending > 0).map((p) => p.flushForExit()));
}

function onBeforeExit(): void {
  // Scheduling the flush gives the loop work again; once it is done beforeExit fires again with nothing pending.
  if ([...participants].some((p) => p.pending > 0)) void flushAll();
}

function onSignal(signal: ExitSignal): void {
  const applicationListens = process.listeners(signal).some((listener) => listener !== onSignal);
  if (signalling) {
    // A second signal while flushing: the operator insists; end now as the signal would have, and say what is lost.
    if (!applicationListens) {
      const unsent = [...participants].reduce((n, p) => n + p.pending, 0);
      if (unsent > 0) error(`dropped ${unsent} metric(s) not yet sent: a second ${signal} ended the process`);
      reraise(signal);
    }
    return;
  }
  signalling = true;
  void flushAll().then(() => {
    signalling = false;
    // The application's own handlers ran too (Node calls every listener); they decide what happens next.
    if (process.listeners(signal).some((listener) => listener !== onSignal)) return;
    // The process went on accepting metrics while it flushed: send those now, synchronously (nothing else runs in
    // between), then end.
    onExit();
    reraise(signal);
  });
}

function reraise(signal: ExitSignal): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  signalsInstalled = false;
  // With no listener left Node restores the default disposition: the process dies of the signal.
  process.kill(process.pid, signal);
}

const EXIT_SENDER = fileURLToPath(new URL("./exit-sender.js", compiledUrl()));

function onExit(): void {
  for (const producer of [...participants]) {
    if (producer.pending === 0) continue;
    const bodies = producer.drainForExit();
    if (producer.queueUrl === undefined) continue;
    if (bodies.length === 0) continue;
    // The event loop is gone: a child process sends the messages (SQS, else PutMetricData) while this one waits.
    const result = spawnSync(process.execPath, [EXIT_SENDER], {
      input: JSON.stringify({ queueUrl: producer.queueUrl, bodies }),
      stdio: ["pipe", "ignore", "inherit"],
      timeout: producer.exitFlushTimeoutMs,
      env: process.env,
    });
    debug("exit sender for %d message(s) ended with %s", bodies.length, result.status ?? result.signal);
    if (result.status === null) {
      // Killed at the timeout (or could not start): the sender said nothing itself.
      const why = result.error?.message ?? `ended by ${result.signal ?? "a signal"}`;
      error(`${bodies.length} message(s) of metrics may not have been sent at exit: the exit sender ${why}`);
    }
  }
}
