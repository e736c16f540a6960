import { createHash, randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal';
import { Role, type ApiKeyEntity } from '../db/entities/api-key.entity';
import type { Page, PageRequest } from '../db/pagination';
import type { Database } from '../db/repositories';
import type { NewApiKey } from '../db/repositories/api-key.repository';
import { badInput, notFound } from '../errors';
import type { AppPubSub } from '../pubsub/pubsub';

const SECRET_PREFIX = 'isk_';
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

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

export class ApiKeyService {
  /** Throttles last_used_at writes to one per key per minute. */
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly pubSub?: AppPubSub,
  ) {}

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
      this.pubSub?.publish('API_KEY_EVENT', { kind: 'REVOKED', apiKeyId: apiKey.id });
    }
    return apiKey;
  }

  /** The principal a secret stands for, or null for an unknown or revoked key. */
  async authenticate(secret: string): Promise<Principal | null> {
    const apiKey = await this.db.apiKeys.findActiveBySecretHash(hashSecret(secret));
    if (!apiKey) return null;
    this.touch(apiKey.id);
    return { apiKeyId: apiKey.id, name: apiKey.name, role: apiKey.role };
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWrites.get(id) ?? 0) < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastUsedWrites.set(id, now);
    void this.db.apiKeys.touchLastUsed(id, new Date(now)).catch(() => undefined);
  }

  /** Makes sure a given secret exists as an active ADMIN key (ADMIN_API_KEY at start-up). */
  async ensureAdminKey(secret: string): Promise<void> {
    const existing = await this.db.apiKeys.findBySecretHash(hashSecret(secret));
    if (!existing) {
      await this.insert('ADMIN_API_KEY', Role.ADMIN, secret);
    } else if (existing.role !== Role.ADMIN || existing.revokedAt) {
      await this.db.apiKeys.restoreAdmin(existing.id);
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
