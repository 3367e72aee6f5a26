// CloudWatch's rules for one metric datum, enforced in the caller before anything is buffered. Rule names and their
// order are those of metricbatch/validation.py; tests/vectors/validation.json holds the cases both suites run.
import { InvalidMetricError } from "./errors.js";
import {
  MAX_ABS_VALUE,
  MAX_DIMENSION_NAME_LENGTH,
  MAX_DIMENSION_VALUE_LENGTH,
  MAX_DIMENSIONS,
  MAX_METRIC_NAME_LENGTH,
  MAX_NAMESPACE_LENGTH,
  MAX_TIMESTAMP_AGE_SECONDS,
  MAX_TIMESTAMP_FUTURE_SECONDS,
  MIN_ABS_VALUE,
  RESERVED_NAMESPACE_PREFIX,
  STORAGE_RESOLUTIONS,
  UNITS,
} from "./limits.js";

/** Dimensions as (name, value) pairs sorted by name. */
export type DimensionPairs = ReadonlyArray<readonly [string, string]>;
export type Dimensions = Readonly<Record<string, string>> | ReadonlyMap<string, string>;
export type TimestampInput = Date | number | string;

// Python's str.isspace() set (what the Python producer strips); JavaScript's trim() differs in \x1c-\x1f, \x85, \ufeff.
const WHITESPACE_ONLY = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
// ISO 8601 extended form, as Python's datetime.fromisoformat reads it (no offset: UTC, as a naive datetime).
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** A short printable form of a value for error messages. */
export function describe(value: unknown, limit = 80): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (typeof value === "bigint") text = `${value}n`;
  else if (value instanceof Date) text = `Date(${value.toISOString?.call(value) ?? value})`;
  else if (typeof value === "object" && value !== null) {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  } else text = String(value);
  return text.length <= limit ? text : text.slice(0, limit - 3) + "...";
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "Date";
  return typeof value;
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

function checkText(kind: string, value: unknown, maxLength: number): string {
  if (typeof value !== "string") {
    throw new InvalidMetricError(`${kind}.type`, `${kind} must be a string, got ${typeName(value)}`);
  }
  if (WHITESPACE_ONLY.test(value)) {
    throw new InvalidMetricError(`${kind}.empty`, `${kind} must have at least one non-whitespace character`);
  }
  // Python counts code points; a UTF-16 length above the limit may still be within it.
  if (value.length > maxLength && codePoints(value) > maxLength) {
    throw new InvalidMetricError(
      `${kind}.length`,
      `${kind} is ${codePoints(value)} characters, more than ${maxLength}: ${describe(value)}`,
    );
  }
  if (!PRINTABLE_ASCII.test(value)) {
    throw new InvalidMetricError(`${kind}.ascii`, `${kind} must be printable ASCII: ${describe(value)}`);
  }
  return value;
}

export function checkName(name: unknown): string {
  return checkText("name", name, MAX_METRIC_NAME_LENGTH);
}

export function checkNamespace(namespace: unknown): string {
  const ns = checkText("namespace", namespace, MAX_NAMESPACE_LENGTH);
  if (ns.startsWith(":")) {
    throw new InvalidMetricError("namespace.colon", `namespace must not start with ':': ${describe(ns)}`);
  }
  if (ns.startsWith(RESERVED_NAMESPACE_PREFIX)) {
    throw new InvalidMetricError("namespace.reserved", `namespace must not start with 'AWS/': ${describe(ns)}`);
  }
  return ns;
}

function entriesOf(dimensions: unknown): Array<[unknown, unknown]> {
  if (dimensions instanceof Map) return [...dimensions.entries()];
  if (typeof dimensions === "object" && dimensions !== null && !Array.isArray(dimensions)) {
    const proto: unknown = Object.getPrototypeOf(dimensions);
    if (proto === Object.prototype || proto === null) return Object.entries(dimensions);
  }
  throw new InvalidMetricError(
    "dimensions.type",
    `dimensions must be a mapping of name to value, got ${typeName(dimensions)}`,
  );
}

/** Validate dimensions (a plain object or a Map) and return them as pairs sorted by name. */
export function checkDimensions(dimensions: unknown): DimensionPairs {
  if (dimensions === undefined || dimensions === null) return [];
  const entries = entriesOf(dimensions);
  if (entries.length > MAX_DIMENSIONS) {
    throw new InvalidMetricError(
      "dimensions.count",
      `${entries.length} dimensions, more than CloudWatch's ${MAX_DIMENSIONS}`,
    );
  }
  const pairs: Array<readonly [string, string]> = [];
  for (const [key, val] of entries) {
    const dimName = checkText("dimension_name", key, MAX_DIMENSION_NAME_LENGTH);
    if (dimName.startsWith(":")) {
      throw new InvalidMetricError(
        "dimension_name.colon",
        `dimension name must not start with ':': ${describe(dimName)}`,
      );
    }
    pairs.push([dimName, checkText("dimension_value", val, MAX_DIMENSION_VALUE_LENGTH)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return pairs;
}

/**
 * A metric value as CloudWatch takes it: a number (or bigint), finite, within ±2^360. A non-zero value closer to
 * zero than 2^-360, which CloudWatch would reject, is returned as 0.
 */
export function checkValue(value: unknown): number {
  let number: number;
  if (typeof value === "number") {
    number = value;
  } else if (typeof value === "bigint") {
    number = Number(value);
    if (!Number.isFinite(number)) {
      throw new InvalidMetricError("value.range", `value ${describe(value)} is outside +/-2^360`);
    }
  } else {
    throw new InvalidMetricError("value.type", `value must be a number, got ${typeName(value)}: ${describe(value)}`);
  }
  if (!Number.isFinite(number)) {
    throw new InvalidMetricError("value.finite", `value must be finite, got ${number}`);
  }
  const magnitude = Math.abs(number);
  if (magnitude > MAX_ABS_VALUE) {
    throw new InvalidMetricError("value.range", `value ${number} is outside +/-2^360`);
  }
  return magnitude < MIN_ABS_VALUE ? 0 : number;
}

export function checkUnit(unit: unknown): string {
  if (typeof unit !== "string" || !UNITS.has(unit)) {
    throw new InvalidMetricError(
      "unit.unknown",
      `unknown unit ${describe(unit)}; CloudWatch accepts ${[...UNITS].sort().join(", ")}`,
    );
  }
  return unit;
}

export function checkResolution(resolution: unknown): 1 | 60 {
  if (typeof resolution !== "number" || !STORAGE_RESOLUTIONS.has(resolution)) {
    throw new InvalidMetricError("resolution.value", `storage resolution must be 1 or 60, got ${describe(resolution)}`);
  }
  return resolution as 1 | 60;
}

function parseIso(text: string): number {
  const m = ISO_8601.exec(text);
  const bad = (): InvalidMetricError =>
    new InvalidMetricError("timestamp.format", `timestamp is not ISO 8601: ${describe(text)}`);
  if (m === null) throw bad();
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as number[];
  const fraction = m[7] === undefined ? 0 : Number(`0.${m[7].slice(0, 6)}`);
  const ms = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const check = new Date(ms);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month! - 1 ||
    check.getUTCDate() !== day ||
    hour! > 23 ||
    minute! > 59 ||
    second! > 59
  ) {
    throw bad();
  }
  let offsetSeconds = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== "Z") {
    const digits = zone.slice(1).replace(":", "");
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2, 4) || "0");
    if (hours > 23 || minutes > 59) throw bad();
    offsetSeconds = (zone[0] === "-" ? -1 : 1) * (hours * 3600 + minutes * 60);
  }
  return ms / 1000 + fraction - offsetSeconds;
}

/** Epoch seconds from a Date, a number of epoch seconds, or an ISO 8601 string (no offset: UTC). */
export function toEpoch(timestamp: unknown): number {
  let epoch: number;
  if (timestamp instanceof Date) epoch = timestamp.getTime() / 1000;
  else if (typeof timestamp === "number") epoch = timestamp;
  else if (typeof timestamp === "bigint") epoch = Number(timestamp);
  else if (typeof timestamp === "string") return parseIso(timestamp);
  else {
    throw new InvalidMetricError(
      "timestamp.type",
      `timestamp must be a Date or epoch seconds, got ${typeName(timestamp)}: ${describe(timestamp)}`,
    );
  }
  if (!Number.isFinite(epoch)) {
    throw new InvalidMetricError("timestamp.type", `timestamp must be finite, got ${describe(timestamp)}`);
  }
  return epoch;
}

export function checkTimestamp(timestamp: unknown, now: number = Date.now() / 1000): number {
  const epoch = toEpoch(timestamp);
  if (epoch < now - MAX_TIMESTAMP_AGE_SECONDS) {
    throw new InvalidMetricError(
      "timestamp.too_old",
      `timestamp ${epoch.toFixed(3)} is more than 14 days before now (${now.toFixed(0)})`,
    );
  }
  if (epoch > now + MAX_TIMESTAMP_FUTURE_SECONDS) {
    throw new InvalidMetricError(
      "timestamp.too_new",
      `timestamp ${epoch.toFixed(3)} is more than 2 hours after now (${now.toFixed(0)})`,
    );
  }
  return epoch;
}

/**
 * The dimension sets a metric is also recorded under, besides its full dimensions (checkRollups in
 * metricbatch/validation.py): each a sorted list of keys; [] is the set with no dimensions; a set equal to the full
 * one, or repeated, is recorded once.
 * @throws InvalidMetricError rollup.type (not a list of lists of names) or rollup.key (a name not among the
 * metric's dimensions, defaults included).
 */
export function checkRollups(rollups: unknown, dimensions: DimensionPairs): string[][] {
  if (rollups === undefined || rollups === null) return [];
  if (!Array.isArray(rollups)) {
    throw new InvalidMetricError(
      "rollup.type",
      `rollups must be a list of lists of dimension names, got ${typeName(rollups)}`,
    );
  }
  const names = new Set(dimensions.map(([name]) => name));
  const full = [...names].sort().join("\u0000");
  const seen = new Set<string>([full]);
  const sets: string[][] = [];
  for (const subset of rollups as unknown[]) {
    if (!Array.isArray(subset)) {
      throw new InvalidMetricError(
        "rollup.type",
        `each roll-up must be a list of dimension names, got ${describe(subset)}`,
      );
    }
    for (const key of subset as unknown[]) {
      if (typeof key !== "string" || !names.has(key)) {
        throw new InvalidMetricError(
          "rollup.key",
          `roll-up key ${describe(key)} is not among the metric's dimensions ${describe([...names].sort())}`,
        );
      }
    }
    const keys = [...new Set(subset as string[])].sort();
    const id = keys.join("\u0000");
    if (!seen.has(id)) {
      seen.add(id);
      sets.push(keys);
    }
  }
  return sets;
}

/**
 * Dimensions from "K=v,K2=v2" (METRICBATCH_DEFAULT_DIMENSIONS; parseDimensionList in metricbatch/validation.py):
 * blanks around names and values are ignored, a value keeps any further "="; an empty text is no dimensions.
 * @throws InvalidMetricError dimensions.format (a part without "=", a name given twice) or any checkDimensions rule.
 */
export function parseDimensionList(text: string): DimensionPairs {
  const pairs = new Map<string, string>();
  for (const part of text.split(",")) {
    if (WHITESPACE_ONLY.test(part)) continue;
    const at = part.indexOf("=");
    if (at < 0) throw new InvalidMetricError("dimensions.format", `expected Name=value, got ${describe(part.trim())}`);
    const name = part.slice(0, at).trim();
    if (pairs.has(name))
      throw new InvalidMetricError("dimensions.format", `dimension ${describe(name)} is given twice`);
    pairs.set(name, part.slice(at + 1).trim());
  }
  return checkDimensions(pairs);
}
