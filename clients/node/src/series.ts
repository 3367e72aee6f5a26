// Validated series, cached by exactly what the caller passed, so a repeated series costs one Map lookup.
import { InvalidMetricError } from "./errors.js";
import {
  checkDimensions,
  checkName,
  checkNamespace,
  checkResolution,
  checkUnit,
} from "./validation.js";
import { seriesHead, type Series } from "./wire.js";
import type { SendOptions } from "./producer.js";

// Series remembered at most; past that the cache starts over (a service with unbounded dimension values).
const MAX_CACHED_SERIES = 10_000;

/**
 * The cache key: every field length-prefixed, so the key is injective over (namespace, name, unit, resolution,
 * dimensions in the caller's order) and only inputs identical to an already validated one can hit. Undefined when
 * a field has a type validation must judge (that path always validates).
 */
function cacheKey(name: unknown, namespace: unknown, options: SendOptions): string | undefined {
  const unit = options.unit === undefined ? "None" : options.unit;
  const resolution = options.storageResolution === undefined ? 60 : options.storageResolution;
  if (typeof name !== "string" || typeof namespace !== "string" || typeof unit !== "string") return undefined;
  if (typeof resolution !== "number") return undefined;
  let key = `${namespace.length}:${namespace}${name.length}:${name}${unit.length}:${unit}${resolution}:`;
  const dimensions = options.dimensions;
  if (dimensions === undefined || dimensions === null) return key;
  if (Object.getPrototypeOf(dimensions) !== Object.prototype) return undefined;
  const record = dimensions as Record<string, unknown>;
  for (const dimName in record) {
    const dimValue = record[dimName];
    if (typeof dimValue !== "string") return undefined;
    key += `${dimName.length}:${dimName}${dimValue.length}:${dimValue}`;
  }
  return key;
}

export class SeriesCache {
  private readonly byKey = new Map<string, Series>();
  // One Series object per canonical series (dimensions sorted), whatever order the caller wrote them in.
  private readonly byHead = new Map<string, Series>();

  /** The validated series for these arguments; throws InvalidMetricError in the Python producer's rule order. */
  lookup(name: unknown, namespace: unknown, options: SendOptions): Series {
    const key = cacheKey(name, namespace, options);
    if (key !== undefined) {
      const cached = this.byKey.get(key);
      if (cached !== undefined) return cached;
    }
    const series = this.validate(name, namespace, options);
    if (key !== undefined) {
      if (this.byKey.size >= MAX_CACHED_SERIES) {
        this.byKey.clear();
        this.byHead.clear();
      }
      this.byKey.set(key, series);
    }
    return series;
  }

  private validate(name: unknown, namespace: unknown, options: SendOptions): Series {
    if (namespace === undefined || namespace === null) {
      throw new InvalidMetricError("namespace.missing", "no namespace: pass namespace or set METRICBATCH_NAMESPACE");
    }
    const ns = checkNamespace(namespace);
    const checkedName = checkName(name);
    const unit = checkUnit(options.unit === undefined ? "None" : options.unit);
    const resolution = checkResolution(options.storageResolution === undefined ? 60 : options.storageResolution);
    const dimensions = checkDimensions(options.dimensions);
    const head = seriesHead(ns, checkedName, unit, resolution, dimensions);
    let series = this.byHead.get(head);
    if (series === undefined) {
      series = { namespace: ns, name: checkedName, unit, resolution, dimensions, head };
      this.byHead.set(head, series);
    }
    return series;
  }
}
