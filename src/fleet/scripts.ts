/**
 * The Lua scripts that make the store's operations atomic on the Redis server. Each runs as one
 * command, so no other client can act between its read and its write.
 */

/**
 * Compare-and-set of the record. KEYS[1] = current hash; ARGV = generation, cookie, expires_at,
 * issued_at, issued_by, at, channel. Writes and announces only when the stored generation is
 * lower; returns {1 accepted / 0 refused, generation now stored}.
 */
export const PUBLISH_SCRIPT = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
local offered = tonumber(ARGV[1])
if stored >= offered then return {0, stored} end
redis.call('HSET', KEYS[1], 'generation', ARGV[1], 'cookie', ARGV[2], 'expires_at', ARGV[3], 'issued_at', ARGV[4], 'issued_by', ARGV[5], 'at', ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[1])
return {1, offered}
`;

/** Extends the lock's TTL (KEYS[1], ARGV = token, ttl ms) only while it holds our token; 1 when it did. */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Deletes the lock (KEYS[1]) only while it holds our token (ARGV[1]); 1 when it did. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
