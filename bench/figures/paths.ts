/**
 * The request every figure sends through nginx: a small admin-only document, so the backend
 * answers 401 without a valid session and an invalidated session really fails.
 */
export const REQUEST_PATH = '/_config/log/level';
