/** The version printed by --version and stamped into generated nginx snippets. */
export const VERSION = '0.1.0';
