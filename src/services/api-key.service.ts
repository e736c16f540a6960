import { createHash, randomBytes } from 'node:crypto';
import type { DataSource, Repository } from 'typeorm';
import { IsNull } from 'typeorm';
import type { Principal } from '../auth/principal';
import { ApiKeyEntity, Role } from '../db/entities/api-key.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../db/pagination';
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

function keyRow(name: string, role: Role, secret: string): Partial<ApiKeyEntity> {
  return { name, role, secretHash: hashSecret(secret), secretPrefix: secret.slice(0, SECRET_PREFIX.length + 6), revokedAt: null, lastUsedAt: null };
}

export class ApiKeyService {
  private readonly repository: Repository<ApiKeyEntity>;
  /** Throttles last_used_at writes to one per key per minute. */
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(
    dataSource: DataSource,
    private readonly pubSub?: AppPubSub,
  ) {
    this.repository = dataSource.getRepository(ApiKeyEntity);
  }

  async create(name: string, role: Role): Promise<CreatedApiKey> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 100) throw badInput('name must be 1 to 100 characters', { argument: 'name' });
    const secret = newSecret();
    const apiKey = await this.insert(trimmed, role, secret);
    return { apiKey, secret };
  }

  private async insert(name: string, role: Role, secret: string): Promise<ApiKeyEntity> {
    const apiKey = await this.repository.save(this.repository.create(keyRow(name, role, secret)));
    this.pubSub?.publish('API_KEY_EVENT', { kind: 'CREATED', apiKeyId: apiKey.id });
    return apiKey;
  }

  async revoke(id: string): Promise<ApiKeyEntity> {
    const apiKey = await this.repository.findOneBy({ id });
    if (!apiKey) throw notFound('API key', id);
    if (!apiKey.revokedAt) {
      apiKey.revokedAt = new Date();
      await this.repository.save(apiKey);
      this.pubSub?.publish('API_KEY_EVENT', { kind: 'REVOKED', apiKeyId: apiKey.id });
    }
    return apiKey;
  }

  /** The principal a secret stands for, or null for an unknown or revoked key. */
  async authenticate(secret: string): Promise<Principal | null> {
    const apiKey = await this.repository.findOneBy({ secretHash: hashSecret(secret), revokedAt: IsNull() });
    if (!apiKey) return null;
    this.touch(apiKey.id);
    return { apiKeyId: apiKey.id, name: apiKey.name, role: apiKey.role };
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWrites.get(id) ?? 0) < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastUsedWrites.set(id, now);
    void this.repository.update({ id }, { lastUsedAt: new Date(now) }).catch(() => undefined);
  }

  /** Makes sure a given secret exists as an active ADMIN key (ADMIN_API_KEY at start-up). */
  async ensureAdminKey(secret: string): Promise<void> {
    const existing = await this.repository.findOneBy({ secretHash: hashSecret(secret) });
    if (!existing) {
      await this.insert('ADMIN_API_KEY', Role.ADMIN, secret);
    } else if (existing.role !== Role.ADMIN || existing.revokedAt) {
      await this.repository.update({ id: existing.id }, { role: Role.ADMIN, revokedAt: null });
    }
  }

  /** On a fresh database, creates the first ADMIN key and returns its secret; otherwise null. */
  async createInitialAdminKey(): Promise<string | null> {
    return this.repository.manager.transaction(async (manager) => {
      // One process at a time, so two replicas starting together create one key, not two.
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['api_key:initial_admin']);
      if ((await manager.count(ApiKeyEntity)) > 0) return null;
      const secret = newSecret();
      await manager.save(manager.create(ApiKeyEntity, keyRow('initial admin', Role.ADMIN, secret)));
      return secret;
    });
  }

  findById(id: string): Promise<ApiKeyEntity | null> {
    return this.repository.findOneBy({ id });
  }

  list(page: PageRequest): Promise<Page<ApiKeyEntity>> {
    return paginate(this.repository.createQueryBuilder('apiKey'), newestFirst<ApiKeyEntity>('apiKey'), page);
  }
}
