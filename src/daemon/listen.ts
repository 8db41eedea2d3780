/**
 * Listen addresses (`host:port`, `[v6]:port`, `unix:/path`) and the loopback rule: the fallback
 * and admin endpoints answer with a service account's session, so by default they accept only
 * loopback addresses or a unix socket.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses a validated listen string. */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith('unix:')) return { kind: 'unix', path: text.slice('unix:'.length) };
  const match = /^\[?([^\]]+)\]?:(\d+)$/.exec(text);
  if (!match) throw new ConfigError([`listen address "${text}" must be host:port, [ipv6]:port or unix:/path`], 'daemon');
  return { kind: 'tcp', host: match[1]!, port: Number(match[2]) };
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost". */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const h = host.replace(/^::ffff:/i, '');
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h === '0:0:0:0:0:0:0:1';
}

/** Throws ConfigError for a non-loopback TCP address unless `allowNonLoopback`. */
export function assertAllowed(address: ListenAddress, key: string, allowNonLoopback: boolean): void {
  if (address.kind === 'unix' || allowNonLoopback || isLoopbackHost(address.host)) return;
  throw new ConfigError([`daemon.${key}: ${address.host} is not a loopback address; the endpoint hands out a service session, so bind it to 127.0.0.1, ::1 or a unix socket, or set daemon.allow_non_loopback: true`], 'daemon');
}

/** For log lines: "127.0.0.1:8981" or "unix:/run/x.sock". */
export function showListen(address: ListenAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
