/**
 * Leader election among control-plane replicas, on etcd (the `etcd3`
 * client's Election: a campaign key per replica on its own lease; the oldest
 * key leads). The leader's epoch is its key's create revision, higher for
 * every later leader; once elected, the replica fences its store with that
 * key (store/etcd.ts) and sends the epoch with every call to workers and
 * data planes (rpc/epoch.ts), so a deposed leader can neither write nor
 * command.
 *
 * Failover: a lease covers a lost host (it expires after `leaseTtlS`), but
 * a dead process is seen sooner. Every follower holds an HTTP/2 connection
 * to the leader's RPC port; when it closes and a new connection is refused,
 * the leader's process is gone, and the follower revokes the leader's lease
 * at once, so the next replica in line is elected within milliseconds. A
 * refusal proves only that nothing listens there; if the leader were alive
 * after all, revoking its lease deposes it safely (fencing holds).
 */
import { connect as connectH2, type ClientHttp2Session } from 'node:http2';
import type { Campaign, ElectionObserver } from 'etcd3';
import { z } from 'zod';
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { sleep } from '../shared/time.js';
import { processGone } from '../shared/port-probe.js';
import { splitAddress } from '../shared/options.js';
import type { EtcdStore } from '../store/etcd.js';
import { etcdCampaignPrefix, etcdElectionName } from '../store/keys.js';

export const DEFAULT_LEASE_TTL_S = 2;
/** Between tries to campaign or observe again after etcd failed us. */
const RETRY_MS = 500;

export const replicaSchema = z.object({
  id: z.string(),
  /** `host:port` of its RPC service. */
  rpc: z.string(),
  /** `http://host:port` of its HTTP API. */
  registration: z.string(),
  pid: z.number().int(),
});
export type Replica = z.infer<typeof replicaSchema>;

export interface LeadershipOptions {
  store: EtcdStore;
  self: Replica;
  leaseTtlS?: number;
  logger: Logger;
  /** Called once this replica leads, with its epoch (its store is fenced by then). */
  onElected: (epoch: number) => void;
  /** Called when this replica led and lost it (lease lost, key gone). */
  onDeposed: (reason: string) => void;
}

export class Leadership {
  readonly #o: LeadershipOptions;
  readonly #log: Logger;
  #campaign: Campaign | undefined;
  #observer: ElectionObserver | undefined;
  #leader: Replica | undefined;
  #epoch = 0;
  #leading = false;
  #closed = false;
  /** The connection by which a follower watches the leader's process. */
  #watch: { leader: Replica; session: ClientHttp2Session } | undefined;

  constructor(options: LeadershipOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** This replica's epoch while it leads; 0 before. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * This replica's key is the oldest (the leader's is gone) but its campaign
   * has not yet confirmed the election: it is about to lead.
   */
  get takingOver(): boolean {
    return !this.#leading && this.#leader?.id === this.#o.self.id;
  }

  /** The leader as last observed (this replica when it leads); undefined while none is known. */
  get leader(): Replica | undefined {
    return this.#leading ? this.#o.self : this.#leader;
  }

  /** Starts campaigning and observing; returns at once. */
  start(): void {
    this.#campaignNow();
    void this.#observe();
  }

  /** Every replica campaigning now, in the order they would lead (the first leads). */
  async replicas(): Promise<Replica[]> {
    const keys = await this.#campaignKeys().catch(() => []);
    return keys.flatMap((k) => parseReplica(k.value.toString()) ?? []);
  }

  /** Resigns (the next replica leads at once) and stops watching. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#observer?.cancel().catch(() => undefined);
    await this.#campaign?.resign().catch(() => undefined);
  }

  #campaignNow(): void {
    if (this.#closed) return;
    const election = this.#o.store.client.election(
      etcdElectionName(this.#o.store.prefix),
      this.#o.leaseTtlS ?? DEFAULT_LEASE_TTL_S,
    );
    const campaign = election.campaign(JSON.stringify(this.#o.self));
    this.#campaign = campaign;
    campaign.on('elected', () => void this.#elected(campaign));
    campaign.on('error', (err: Error) => {
      if (this.#closed || this.#campaign !== campaign) return;
      if (this.#leading) {
        this.#leading = false;
        this.#o.onDeposed(`lost the election lease: ${errorMessage(err)}`);
        return;
      }
      this.#log.warn({ err: errorMessage(err) }, 'campaign failed; campaigning again');
      void campaign.resign().catch(() => undefined);
      setTimeout(() => this.#campaignNow(), RETRY_MS);
    });
  }

  async #elected(campaign: Campaign): Promise<void> {
    try {
      const key = await campaign.getCampaignKey();
      const kv = (await this.#o.store.client.get(key).exec()).kvs[0];
      if (kv === undefined) throw new Error('the campaign key is gone');
      this.#o.store.fence(key, kv.create_revision);
      this.#epoch = Number(kv.create_revision);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'elected, but cannot read the campaign key');
      void campaign.resign().catch(() => undefined);
      setTimeout(() => this.#campaignNow(), RETRY_MS);
      return;
    }
    if (this.#closed) return;
    this.#leading = true;
    this.#unwatch();
    this.#log.info({ epoch: this.#epoch }, 'leading the control plane');
    this.#o.onElected(this.#epoch);
  }

  async #observe(): Promise<void> {
    while (!this.#closed) {
      try {
        const election = this.#o.store.client.election(etcdElectionName(this.#o.store.prefix));
        const observer = await election.observe();
        this.#observer = observer;
        this.#onLeader(observer.leader());
        observer.on('change', (value) => this.#onLeader(value));
        await new Promise<void>((resolve) => {
          observer.once('error', (err: Error) => {
            this.#log.warn(
              { err: errorMessage(err) },
              'lost sight of the election; observing again',
            );
            resolve();
          });
        });
        void observer.cancel().catch(() => undefined);
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'cannot observe the election');
      }
      await sleep(RETRY_MS);
    }
  }

  #onLeader(value: string | undefined): void {
    const leader = value === undefined ? undefined : parseReplica(value);
    this.#leader = leader;
    if (leader !== undefined && leader.id !== this.#o.self.id) {
      this.#log.info({ leader: leader.id, rpc: leader.rpc }, 'following');
      this.#watchLeader(leader);
    } else this.#unwatch();
  }

  /** Holds a connection to the leader's RPC port; when it closes, checks whether the process is gone. */
  #watchLeader(leader: Replica): void {
    if (this.#watch?.leader.id === leader.id || this.#closed || this.#leading) return;
    this.#unwatch();
    const session = connectH2(`http://${leader.rpc}`);
    session.on('error', () => undefined);
    this.#watch = { leader, session };
    session.once('close', () => {
      if (this.#watch?.session !== session) return;
      this.#watch = undefined;
      void this.#checkLeaderProcess(leader);
    });
  }

  #unwatch(): void {
    const w = this.#watch;
    this.#watch = undefined;
    w?.session.destroy();
  }

  async #checkLeaderProcess(leader: Replica): Promise<void> {
    const { host, port } = splitAddress(leader.rpc);
    const stillLeads = () => !this.#closed && !this.#leading && this.#leader?.id === leader.id;
    if (await processGone(host, port, stillLeads)) {
      this.#log.warn(
        { leader: leader.id, rpc: leader.rpc },
        "the leader's process is gone (connection refused); revoking its lease",
      );
      // Another follower may have revoked it first (etcd: lease not found).
      await this.#revokeLeaseOf(leader).catch((err: unknown) =>
        this.#log.info({ err: errorMessage(err) }, "the dead leader's lease is already gone"),
      );
      return;
    }
    // It still listens (a restart, or a broken connection): watch it again if it still leads.
    if (stillLeads()) this.#watchLeader(leader);
  }

  /** The campaign keys, oldest (the leader's) first. */
  async #campaignKeys() {
    const res = await this.#o.store.client
      .getAll()
      .prefix(etcdCampaignPrefix(this.#o.store.prefix))
      .sort('Create', 'Ascend')
      .exec();
    return res.kvs;
  }

  async #revokeLeaseOf(leader: Replica): Promise<void> {
    const kv = (await this.#campaignKeys()).find(
      (k) => parseReplica(k.value.toString())?.id === leader.id,
    );
    if (kv === undefined || kv.lease === '0') return;
    await this.#o.store.client.leaseClient.leaseRevoke({ ID: kv.lease });
  }
}

function parseReplica(raw: string): Replica | undefined {
  try {
    const parsed = replicaSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
