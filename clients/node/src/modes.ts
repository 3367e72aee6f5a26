// Which mode a producer runs in (metricbatch/producer/config.py `_choose_mode`): the mode option beats
// METRICBATCH_MODE, which beats the default, sqs with a queue URL. A setting that cannot work is never an error in the
// caller: the mode becomes off and the reason says why (announced once: a warning when nothing is configured at all,
// an ERROR when a setting is there but unusable).
import { ConfigurationError, InvalidMetricError } from "./errors.js";
import { checkNamespace } from "./validation.js";

export const QUEUE_URL_VARIABLE = "METRICBATCH_QUEUE_URL";
export const NAMESPACE_VARIABLE = "METRICBATCH_NAMESPACE";
export const MODE_VARIABLE = "METRICBATCH_MODE";
/** The namespace of a metric sent without one when METRICBATCH_NAMESPACE is unset or invalid (DEFAULT_NAMESPACE in
 * metricbatch/env.py): host configuration missing never throws in the caller; it is said once. */
export const DEFAULT_NAMESPACE = "metricbatch/default";

/** "sqs": to the pipeline's queue; "memory": kept in the process for tests (metricbatch/testing); "off": validated
 * and discarded (chosen for you when a setting sqs needs is missing). */
export const MODES = ["sqs", "memory", "off"] as const;
export type Mode = (typeof MODES)[number];

export const DISCARDED = "metrics are validated and discarded";
const ALLOWED = MODES.join(", ");
export const NO_DESTINATION =
  `no ${QUEUE_URL_VARIABLE} and no ${MODE_VARIABLE} (nor queueUrl or mode options): ${DISCARDED} ` +
  `(set ${QUEUE_URL_VARIABLE} or pass queueUrl to send them to the pipeline, or ${MODE_VARIABLE}=memory|off to choose)`;

export interface ModeChoice {
  mode: Mode;
  /** Why the mode was chosen for you (a setting is missing or wrong), else "". */
  reason: string;
  level: "warning" | "error";
  /** A setting this producer cannot honour although it still delivers (METRICBATCH_MODE=emf with a queue URL). */
  notice?: string;
}

function isMode(value: string): value is Mode {
  return (MODES as readonly string[]).includes(value);
}

/**
 * The mode from the option, else METRICBATCH_MODE, else the default.
 * @throws ConfigurationError the option (code, not the environment) is not a mode.
 */
export function chooseMode(
  explicit: string | undefined,
  fromEnv: string | undefined,
  queueUrl: string | undefined,
): ModeChoice {
  let mode: Mode;
  let source: string;
  if (explicit !== undefined) {
    if (!isMode(explicit))
      throw new ConfigurationError(`mode must be one of ${ALLOWED}; got ${JSON.stringify(explicit)}`);
    [mode, source] = [explicit, `mode '${explicit}'`];
  } else if (fromEnv !== undefined && fromEnv.trim() !== "") {
    const value = fromEnv.trim().toLowerCase();
    source = `${MODE_VARIABLE}='${fromEnv}'`;
    if (value === "emf") {
      // Set for the Python services of a host: this producer has no EMF writer; the queue, when there is one, keeps
      // its metrics flowing (the mode option, being code, must name a mode this producer has).
      const unsupported = `${source}: the Node producer does not write EMF`;
      if (queueUrl === undefined) return off(`${unsupported} and has no queue URL: ${DISCARDED}`, "error");
      return { mode: "sqs", reason: "", level: "error", notice: `${unsupported}; it sends to ${queueUrl} instead` };
    }
    if (!isMode(value)) return off(`${source} is not one of ${ALLOWED}: ${DISCARDED}`, "error");
    mode = value;
  } else if (queueUrl !== undefined) {
    return { mode: "sqs", reason: "", level: "warning" };
  } else {
    return off(NO_DESTINATION, "warning");
  }
  if (mode === "sqs" && queueUrl === undefined) {
    return off(`${source} but no queue URL: ${DISCARDED} (pass queueUrl or set ${QUEUE_URL_VARIABLE})`, "error");
  }
  return { mode, reason: "", level: "warning" };
}

function off(reason: string, level: "warning" | "error"): ModeChoice {
  return { mode: "off", reason, level };
}

export interface NamespaceChoice {
  namespace: string;
  /** Why the namespace is DEFAULT_NAMESPACE (no or an invalid METRICBATCH_NAMESPACE), else "". */
  reason: string;
}

/** The namespace option, else METRICBATCH_NAMESPACE when valid, else DEFAULT_NAMESPACE (metricbatch/producer/config.py
 * `_choose_namespace`). An option given in code is kept as it is: a bad one throws at each call. */
export function chooseNamespace(explicit: string | undefined, fromEnv: string | undefined): NamespaceChoice {
  if (explicit !== undefined && explicit !== null) return { namespace: explicit, reason: "" };
  const fallback = `metrics sent without a namespace go to namespace '${DEFAULT_NAMESPACE}'`;
  if (!fromEnv) {
    return { namespace: DEFAULT_NAMESPACE, reason: `no ${NAMESPACE_VARIABLE} and no namespace option: ${fallback}` };
  }
  try {
    return { namespace: checkNamespace(fromEnv), reason: "" };
  } catch (error) {
    if (!(error instanceof InvalidMetricError)) throw error;
    const why = `${NAMESPACE_VARIABLE}='${fromEnv}' is not a valid namespace (${error.message})`;
    return { namespace: DEFAULT_NAMESPACE, reason: `${why}: ${fallback}` };
  }
}
