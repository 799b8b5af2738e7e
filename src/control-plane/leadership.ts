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
 * a dead process is seen sooner. Every follower holds an idle TCP connection
 * to the leader's RPC port; when it closes and a new connection is refused,
 * the leader's process is gone, and the follower revokes the leader's lease
 * at once (its lease id is read while it is alive). A refusal proves only
 * that nothing listens there; if the leader were alive after all, revoking
 * its lease deposes it safely (fencing holds).
 *
 * A replica leads as soon as either the election's observer or its own
 * campaign shows its key as the oldest: both read the same fact from etcd
 * (no older key exists, and keys made later are younger), and the observer
 * sees it a few round trips sooner. Each campaign's value carries a fresh
 * `term`, so an observed key is known to be this campaign's and not an
 * older one of the same replica; the key's create revision (the fence and
 * the epoch) is read while the replica still follows.
 */
import { connect, type Socket } from 'node:net';
import type { Campaign, ElectionObserver } from 'etcd3';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { sleep } from '../shared/time.js';
import { processGone } from '../shared/port-probe.js';
import { splitAddress } from '../shared/options.js';
import type { EtcdStore } from '../store/etcd.js';
import { etcdCampaignPrefix, etcdElectionName } from '../store/keys.js';
import { DEFAULT_LEASE_TTL_S } from './control-plane-options.js';

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

/** A campaign key's value: the replica and the campaign's term (unique per campaign). */
const campaignValueSchema = replicaSchema.extend({ term: z.string() });
type CampaignValue = z.infer<typeof campaignValueSchema>;

/** This replica's current campaign. */
interface OwnCampaign {
  campaign: Campaign;
  term: string;
  /** Its key's create revision, once read (the fence and the epoch). */
  createRevision?: string;
}

/** A follower's connection to the leader's RPC port, and the leader's lease once read. */
interface LeaderWatch {
  leader: CampaignValue;
  socket: Socket;
  lease?: string | undefined;
}

/** How often, and how far apart, a campaign's new key is looked for. */
const KEY_READ_TRIES = 20;
const KEY_READ_GAP_MS = 50;

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
  #own: OwnCampaign | undefined;
  #observer: ElectionObserver | undefined;
  #leader: CampaignValue | undefined;
  #epoch = 0;
  #leading = false;
  #closed = false;
  /** The connection by which a follower watches the leader's process. */
  #watch: LeaderWatch | undefined;
  /** Terms of leaders whose process died and whose lease was revoked. */
  readonly #gone = new Set<string>();

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
    return !this.#leading && this.#leader !== undefined && this.#leader.term === this.#own?.term;
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
    return keys.flatMap((k) => {
      const value = parseCampaignValue(k.value.toString());
      if (value === undefined) return [];
      const { term: _term, ...replica } = value;
      return [replica];
    });
  }

  /** Resigns (the next replica leads at once) and stops watching. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#observer?.cancel().catch(() => undefined);
    await this.#own?.campaign.resign().catch(() => undefined);
  }

  #campaignNow(): void {
    if (this.#closed) return;
    const election = this.#o.store.client.election(
      etcdElectionName(this.#o.store.prefix),
      this.#o.leaseTtlS ?? DEFAULT_LEASE_TTL_S,
    );
    const term = randomUUID();
    const campaign = election.campaign(JSON.stringify({ ...this.#o.self, term }));
    const own: OwnCampaign = { campaign, term };
    this.#own = own;
    void this.#readCreateRevision(own);
    campaign.on('elected', () => void this.#lead(own));
    campaign.on('error', (err: Error) => {
      if (this.#closed || this.#own !== own) return;
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

  /**
   * Reads the create revision of the campaign's key, once the campaign has
   * made it; undefined when it cannot (then `#lead` reads it itself).
   */
  async #readCreateRevision(own: OwnCampaign): Promise<string | undefined> {
    if (own.createRevision !== undefined) return own.createRevision;
    try {
      const key = await own.campaign.getCampaignKey();
      for (let i = 0; i < KEY_READ_TRIES && this.#own === own && !this.#closed; i++) {
        if (i > 0) await sleep(KEY_READ_GAP_MS);
        const kv = (await this.#o.store.client.get(key).exec()).kvs[0];
        if (kv !== undefined) {
          own.createRevision = kv.create_revision;
          return own.createRevision;
        }
      }
    } catch (err) {
      this.#log.info({ err: errorMessage(err) }, "cannot read this replica's campaign key yet");
    }
    return undefined;
  }

  /** Leads with `own`'s key: called when the observer or the campaign shows it as the oldest. */
  async #lead(own: OwnCampaign): Promise<void> {
    if (this.#leading || this.#own !== own || this.#closed) return;
    const revision = await this.#readCreateRevision(own);
    const key = revision === undefined ? undefined : await own.campaign.getCampaignKey();
    // Both the observer and the campaign may have called: the first to get here leads.
    if (this.#leading || this.#own !== own || this.#closed) return;
    if (revision === undefined || key === undefined) {
      this.#log.warn('elected, but cannot read the campaign key; campaigning again');
      void own.campaign.resign().catch(() => undefined);
      setTimeout(() => this.#campaignNow(), RETRY_MS);
      return;
    }
    this.#o.store.fence(key, revision);
    this.#epoch = Number(revision);
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
    const leader = value === undefined ? undefined : parseCampaignValue(value);
    // The observer may still report a leader whose death this replica has seen.
    if (leader !== undefined && this.#gone.has(leader.term)) return;
    this.#leader = leader;
    const own = this.#own;
    if (leader !== undefined && own !== undefined && leader.term === own.term) {
      this.#unwatch();
      void this.#lead(own);
    } else if (leader !== undefined && leader.id !== this.#o.self.id) {
      this.#watchLeader(leader);
    } else this.#unwatch();
  }

  /** Holds a connection to the leader's RPC port; when it closes, checks whether the process is gone. */
  #watchLeader(leader: CampaignValue): void {
    if (this.#watch?.leader.term === leader.term || this.#closed || this.#leading) return;
    this.#log.info({ leader: leader.id, rpc: leader.rpc }, 'following');
    this.#unwatch();
    const { host, port } = splitAddress(leader.rpc);
    const socket = connect({ host, port, keepAlive: true });
    socket.on('error', () => undefined);
    const watch: LeaderWatch = { leader, socket };
    this.#watch = watch;
    socket.once('close', () => {
      if (this.#watch !== watch) return;
      this.#watch = undefined;
      void this.#checkLeaderProcess(watch);
    });
    // Its lease is read now, so that revoking it after its death takes one call.
    void this.#leaseOf(leader)
      .then((lease) => (watch.lease = lease))
      .catch(() => undefined);
  }

  #unwatch(): void {
    const w = this.#watch;
    this.#watch = undefined;
    w?.socket.destroy();
  }

  async #checkLeaderProcess(watch: LeaderWatch): Promise<void> {
    const { leader } = watch;
    const { host, port } = splitAddress(leader.rpc);
    const stillLeads = () => !this.#closed && !this.#leading && this.#leader?.term === leader.term;
    if (await processGone(host, port, stillLeads)) {
      this.#log.warn(
        { leader: leader.id, rpc: leader.rpc },
        "the leader's process is gone (connection refused); revoking its lease",
      );
      // Another follower may have revoked it first (etcd: lease not found).
      try {
        const lease = watch.lease ?? (await this.#leaseOf(leader));
        if (lease !== undefined) await this.#o.store.client.leaseClient.leaseRevoke({ ID: lease });
      } catch (err) {
        this.#log.info({ err: errorMessage(err) }, "the dead leader's lease is already gone");
      }
      this.#gone.add(leader.term);
      await this.#readLeader();
      return;
    }
    // It still listens (a restart, or a broken connection): watch it again if it still leads.
    if (stillLeads()) this.#watchLeader(leader);
  }

  /**
   * Reads who leads now (the oldest campaign key) and acts on it, without
   * waiting for the observer, which learns it a few round trips later.
   */
  async #readLeader(): Promise<void> {
    try {
      const [oldest] = await this.#campaignKeys();
      if (oldest !== undefined && !this.#closed) this.#onLeader(oldest.value.toString());
    } catch (err) {
      this.#log.info(
        { err: errorMessage(err) },
        'cannot read the election; the observer will tell',
      );
    }
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

  /** The lease of a campaign's key; undefined when the key is gone. */
  async #leaseOf(campaign: CampaignValue): Promise<string | undefined> {
    const kv = (await this.#campaignKeys()).find(
      (k) => parseCampaignValue(k.value.toString())?.term === campaign.term,
    );
    return kv === undefined || kv.lease === '0' ? undefined : kv.lease;
  }
}

function parseCampaignValue(raw: string): CampaignValue | undefined {
  try {
    const parsed = campaignValueSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
