// What the producer tells the operator. Warnings are process warnings (type MetricBatchWarning, like the drop lines);
// ERROR lines go to stderr, where a wrong setting is seen even with warnings silenced (--no-warnings).
import { processWide } from "./process-wide.js";

const announced = processWide("announced", () => new Set<string>());

export function warn(message: string): void {
  process.emitWarning(message, "MetricBatchWarning");
}

export function error(message: string): void {
  console.error(`metricbatch ERROR: ${message}`);
}

/** Say why the mode was chosen for you, once per reason and process (metricbatch/producer/modes.py `announce`):
 * a warning when nothing is configured, an ERROR when a setting is there but unusable. */
export function announce(reason: string, level: "warning" | "error"): void {
  if (announced.has(reason)) return;
  announced.add(reason);
  if (level === "warning") warn(`metricbatch: ${reason}`);
  else error(reason);
}
