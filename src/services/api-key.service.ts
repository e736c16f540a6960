import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal';
import { Role, type ApiKeyEntity } from '../db/entities/api-key.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import type { NewApiKey } from '../db/repositories/api-key.repository';
import { badInput, notFound } from '../errors';
import type { AppPubSub } from '../pubsub/pubsub';

const SECRET_PREFIX = 'isk_';
const LAST_USED_WRITE_INTERVAL_MS = 60_000;
/**
 * How long an authenticated key is trusted without asking the database again. Revocations reach
 * every replica at once over the pub/sub (API_KEY_EVENT); this bounds what a lost event costs.
 */
const PRINCIPAL_CACHE_TTL_MS = 10_000;
/** Keys remembered at most (the oldest go first); unknown secrets are never remembered. */
const PRINCIPAL_CACHE_MAX_KEYS = 10_000;
/** Revocations by replicas whose clocks run up to this far behind ours are still announced after a gap. */
const MISSED_REVOCATION_MARGIN_MS = 5 * 60_000;

export interface CreatedApiKey {
  apiKey: ApiKeyEntity;
  /** The only time the secret exists outside the caller's hands. */
  secret: string;
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

function keyRow(name: string, role: Role, secret: string): NewApiKey {
  return { name, role, secretHash: hashSecret(secret), secretPrefix: secret.slice(0, SECRET_PREFIX.length + 6) };
}

type RevocationListener = (apiKeyId: string) => void;

export class ApiKeyService {
  /** Throttles last_used_at writes to one per key per minute. */
  private readonly lastUsedWrites = new Map<string, number>();
  /** Authenticated keys by secret hash (hex), in insertion order. */
  private readonly principals = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly revocationListeners = new Set<RevocationListener>();
  private readonly revocations: AsyncIterator<unknown> | null = null;
  private readonly stopWatchingConnection?: () => void;
  /** Set when revocations can no longer be heard: every request asks the database. */
  private cacheDisabled = false;
  /** False while the pub/sub's connection is lost (revocations from other processes go unheard). */
  private hearingRevocations = true;
  /** When the connection was lost; revocations made since may have gone unheard. */
  private deafSince: Date | null = null;
  /** Revocations seen: a lookup that overlapped one is not remembered (it may predate it). */
  private revocationCount = 0;

  constructor(
    private readonly db: Database,
    private readonly pubSub?: AppPubSub,
  ) {
    if (pubSub) {
      const events = pubSub.subscribe('API_KEY_EVENT')[Symbol.asyncIterator]();
      this.revocations = events;
      void (async () => {
        for (let next = await events.next(); !next.done; next = await events.next())
          if (next.value.kind === 'REVOKED') this.revoked(next.value.apiKeyId);
      })().catch(() => {
        // The event stream failed: forget every remembered key, and remember none from now on.
        this.principals.clear();
        this.cacheDisabled = true;
      });
      // Revocations sent while the connection was lost were missed: forget every remembered key on
      // a loss and on the return, remember none in between, nor any looked up across the return.
      this.stopWatchingConnection = pubSub.connection?.onConnectionChange((connected) => {
        this.principals.clear();
        this.revocationCount += 1;
        this.hearingRevocations = connected;
        if (!connected) this.deafSince ??= new Date();
        else void this.announceMissedRevocations();
      });
    }
  }

  /** `listener` hears of every key revoked, in this process or another (e.g. to close its websockets). */
  onRevoked(listener: RevocationListener): () => void {
    this.revocationListeners.add(listener);
    return () => this.revocationListeners.delete(listener);
  }

  /** Stops listening for revocations. */
  async close(): Promise<void> {
    this.stopWatchingConnection?.();
    await this.revocations?.return?.();
  }

  /**
   * Keys revoked by another process while the connection was lost reach the listeners now (so
   * their websockets here close). The margin covers clocks of other replicas that run behind.
   */
  private async announceMissedRevocations(): Promise<void> {
    const since = this.deafSince;
    this.deafSince = null;
    if (!since) return;
    try {
      const missed = await this.db.apiKeys.revokedSince(new Date(since.getTime() - MISSED_REVOCATION_MARGIN_MS));
      for (const apiKeyId of missed) this.revoked(apiKeyId);
    } catch {
      // The database is gone again: the next return announces them.
      this.deafSince ??= since;
    }
  }

  private revoked(apiKeyId: string): void {
    this.revocationCount += 1;
    for (const [hash, entry] of this.principals)
      if (entry.principal.apiKeyId === apiKeyId) this.principals.delete(hash);
    for (const listener of this.revocationListeners) listener(apiKeyId);
  }

  async create(name: string, role: Role): Promise<CreatedApiKey> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100)
      throw badInput('name must be 1 to 100 characters', { argument: 'name' });
    const secret = newSecret();
    const apiKey = await this.insert(trimmed, role, secret);
    return { apiKey, secret };
  }

  private async insert(name: string, role: Role, secret: string): Promise<ApiKeyEntity> {
    const apiKey = await this.db.apiKeys.insert(keyRow(name, role, secret));
    this.pubSub?.publish('API_KEY_EVENT', { kind: 'CREATED', apiKeyId: apiKey.id });
    return apiKey;
  }

  async revoke(id: string): Promise<ApiKeyEntity> {
    const apiKey = await this.db.apiKeys.findById(id);
    if (!apiKey) throw notFound('API key', id);
    if (!apiKey.revokedAt) {
      apiKey.revokedAt = new Date();
      await this.db.apiKeys.markRevoked(apiKey.id, apiKey.revokedAt);
      // At once here; other replicas (and this one again) when the event arrives.
      this.revoked(apiKey.id);
      this.pubSub?.publish('API_KEY_EVENT', { kind: 'REVOKED', apiKeyId: apiKey.id });
    }
    return apiKey;
  }

  /** The principal a secret stands for, or null for an unknown or revoked key. */
  async authenticate(secret: string): Promise<Principal | null> {
    const hash = hashSecret(secret);
    const cacheKey = hash.toString('hex');
    const now = Date.now();
    const cached = this.principals.get(cacheKey);
    if (cached && cached.expiresAt > now) {
      this.touch(cached.principal.apiKeyId);
      return cached.principal;
    }
    this.principals.delete(cacheKey);
    const revocationsBefore = this.revocationCount;
    const apiKey = await this.db.apiKeys.findActiveBySecretHash(hash);
    if (!apiKey) return null;
    this.touch(apiKey.id);
    const principal: Principal = { apiKeyId: apiKey.id, name: apiKey.name, role: apiKey.role };
    if (this.cacheDisabled || !this.hearingRevocations || !this.pubSub || this.revocationCount !== revocationsBefore)
      return principal;
    if (this.principals.size >= PRINCIPAL_CACHE_MAX_KEYS)
      this.principals.delete(this.principals.keys().next().value as string);
    this.principals.set(cacheKey, { principal, expiresAt: now + PRINCIPAL_CACHE_TTL_MS });
    return principal;
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWrites.get(id) ?? 0) < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastUsedWrites.set(id, now);
    void this.db.apiKeys.touchLastUsed(id, new Date(now)).catch(() => undefined);
  }

  /**
   * ADMIN_API_KEY at start-up: creates it as an ADMIN key the first time. A key that exists is left
   * as it is: a configuration must not bring back a key someone revoked (e.g. after it leaked), so a
   * revoked one stays revoked, grants nothing, and the service starts with a warning.
   */
  async ensureAdminKey(secret: string, logger: Pick<Logger, 'warn'>): Promise<void> {
    const existing = await this.db.apiKeys.findBySecretHash(hashSecret(secret));
    if (!existing) {
      await this.insert('ADMIN_API_KEY', Role.ADMIN, secret);
    } else if (existing.revokedAt) {
      logger.warn(
        { apiKeyId: existing.id, revokedAt: existing.revokedAt },
        'ADMIN_API_KEY is a revoked API key: it stays revoked and grants nothing; set ADMIN_API_KEY to a new secret or unset it',
      );
    } else if (existing.role !== Role.ADMIN) {
      logger.warn(
        { apiKeyId: existing.id, role: existing.role },
        `ADMIN_API_KEY is a ${existing.role} key: it keeps that role; set ADMIN_API_KEY to a new secret for an ADMIN key`,
      );
    }
  }

  /** On a fresh database, creates the first ADMIN key and returns its secret; otherwise null. */
  async createInitialAdminKey(): Promise<string | null> {
    return this.db.transaction(async (tx) => {
      // One process at a time, so two replicas starting together create one key, not two.
      await tx.apiKeys.lockInitialAdminCreation();
      if (await tx.apiKeys.hasAny()) return null;
      const secret = newSecret();
      await tx.apiKeys.insert(keyRow('initial admin', Role.ADMIN, secret));
      return secret;
    });
  }

  findById(id: string): Promise<ApiKeyEntity | null> {
    return this.db.apiKeys.findById(id);
  }

  list(page: PageRequest): Promise<Page<ApiKeyEntity>> {
    return this.db.apiKeys.page(page);
  }
}
