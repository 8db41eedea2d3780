/**
 * The fleet's Prometheus gauges, read at scrape time from each session's coordinator: whether
 * the store is connected, the store's generation, how far this node trails it, and which node
 * issued it (the leader of the last rotation; node ids are names, not secrets).
 */
import { Gauge, type Registry } from 'prom-client';
import type { FleetStatus } from './coordinator.js';

/** Each session's fleet status, or undefined for a session without one. */
export type FleetStatuses = () => { session: string; status: FleetStatus | undefined }[];

/** Registers the fleet gauges on `registry`. */
export function registerFleetMetrics(registry: Registry, statuses: FleetStatuses): void {
  const p = 'session_refresher_cluster_';
  const each = (read: (session: string, status: FleetStatus) => void) => {
    for (const { session, status } of statuses()) if (status) read(session, status);
  };
  new Gauge({
    name: `${p}connected`,
    help: '1 while the fleet store (Redis) is connected, else 0.',
    labelNames: ['session'],
    registers: [registry],
    collect() {
      this.reset();
      each((session, s) => this.set({ session }, s.connected ? 1 : 0));
    },
  });
  new Gauge({
    name: `${p}store_generation`,
    help: 'The generation in the fleet store, as last read.',
    labelNames: ['session'],
    registers: [registry],
    collect() {
      this.reset();
      each((session, s) => this.set({ session }, s.storeGeneration));
    },
  });
  new Gauge({
    name: `${p}generation_lag`,
    help: "How many generations this node's include trails the fleet store's.",
    labelNames: ['session'],
    registers: [registry],
    collect() {
      this.reset();
      each((session, s) => this.set({ session }, s.lag));
    },
  });
  new Gauge({
    name: `${p}leader_info`,
    help: 'The node that issued the generation in the store (the leader of the last rotation), as a label.',
    labelNames: ['session', 'leader'],
    registers: [registry],
    collect() {
      this.reset();
      each((session, s) => s.leader !== undefined && this.set({ session, leader: s.leader }, 1));
    },
  });
}
