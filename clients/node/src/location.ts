// Where this package's compiled files are, in both builds (dist/esm and dist/cjs): `import.meta.url` exists only in
// ES modules and `__dirname` only in CommonJS, but V8's call sites name the running file in both (raw call sites, so
// --enable-source-maps cannot map it to a .ts file that is not shipped).
import { pathToFileURL } from "node:url";

/** The file URL of the compiled file this function is in (resolve siblings against it with `new URL`). */
export function compiledUrl(): string {
  const { prepareStackTrace, stackTraceLimit } = Error;
  try {
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, sites) => sites;
    const sites = new Error().stack as unknown as NodeJS.CallSite[];
    const file = sites[0]?.getFileName() ?? "";
    return file.startsWith("file:") ? file : pathToFileURL(file).href;
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}
