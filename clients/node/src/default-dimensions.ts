// A producer's default dimensions: from the defaultDimensions option (a wrong value throws ConfigurationError) or
// METRICBATCH_DEFAULT_DIMENSIONS (a wrong value is one ERROR line and ignored: configuration never throws in the caller).
import { ConfigurationError } from "./errors.js";
import { announce } from "./log.js";
import { checkDimensions, parseDimensionList, type DimensionPairs, type Dimensions } from "./validation.js";

/** Dimensions on every metric of a producer: "Service=cart,Stage=prod" (metricbatch/env.py DEFAULT_DIMENSIONS). */
export const DEFAULT_DIMENSIONS_VARIABLE = "METRICBATCH_DEFAULT_DIMENSIONS";
const reportedDefaults = new Set<string>();

/** METRICBATCH_DEFAULT_DIMENSIONS parsed once; a malformed value is one error line (once per value and process) and
 * no default dimensions, never an exception in the caller. */
export function defaultDimensionsFromEnv(text: string | undefined): DimensionPairs {
  if (!text) return [];
  try {
    return parseDimensionList(text);
  } catch (error) {
    if (!reportedDefaults.has(text)) {
      reportedDefaults.add(text);
      announce(
        `${DEFAULT_DIMENSIONS_VARIABLE}=${JSON.stringify(text)} is ignored (expected Name=value,Name2=value2): ${(error as Error).message}`,
        "error",
      );
    }
    return [];
  }
}

/** The option if given (checked: a wrong value throws ConfigurationError), else the variable. */
export function resolveDefaultDimensions(option: Dimensions | undefined): DimensionPairs {
  if (option === undefined) return defaultDimensionsFromEnv(process.env[DEFAULT_DIMENSIONS_VARIABLE]);
  try {
    return checkDimensions(option);
  } catch (error) {
    throw new ConfigurationError(`defaultDimensions: ${(error as Error).message}`);
  }
}
