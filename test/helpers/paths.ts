/** Where things are, from the compiled test files in dist-test/test/helpers/. */
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The built CLI that users run. */
export const CLI = `${ROOT}dist/cli.js`;
