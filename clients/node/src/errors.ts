/** Base class of every error metricbatch throws. */
export class MetricBatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A metric CloudWatch would reject. `rule` is the same machine-readable name the Python producer uses
 * (e.g. `"value.finite"`); the message names the rule and the offending value.
 */
export class InvalidMetricError extends MetricBatchError {
  readonly rule: string;
  readonly detail: string;

  constructor(rule: string, detail: string) {
    super(`${detail} [rule: ${rule}]`);
    this.rule = rule;
    this.detail = detail;
  }
}

/** Missing or contradictory configuration, e.g. no queue URL for the default producer. */
export class ConfigurationError extends MetricBatchError {}
