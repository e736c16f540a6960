import { IsNull, MoreThanOrEqual, type EntityManager, type Repository } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity';
import { newestFirst, paginate, type Page, type PageRequest } from '../pagination';

/** A new key: what the service decided, the secret already hashed. */
export type NewApiKey = Pick<ApiKeyEntity, 'name' | 'role' | 'secretHash' | 'secretPrefix'>;

/** The SQL of the api_key table. */
export class ApiKeyRepository {
  private readonly repository: Repository<ApiKeyEntity>;

  constructor(private readonly manager: EntityManager) {
    this.repository = manager.getRepository(ApiKeyEntity);
  }

  /** Inserts an active key; the row returned has its id and createdAt. */
  insert(key: NewApiKey): Promise<ApiKeyEntity> {
    return this.repository.save(this.repository.create({ ...key, revokedAt: null, lastUsedAt: null }));
  }

  findById(id: string): Promise<ApiKeyEntity | null> {
    return this.repository.findOneBy({ id });
  }

  /** The key with this secret hash, revoked or not. */
  findBySecretHash(secretHash: Buffer): Promise<ApiKeyEntity | null> {
    return this.repository.findOneBy({ secretHash });
  }

  findActiveBySecretHash(secretHash: Buffer): Promise<ApiKeyEntity | null> {
    return this.repository.findOneBy({ secretHash, revokedAt: IsNull() });
  }

  async markRevoked(id: string, revokedAt: Date): Promise<void> {
    await this.repository.update({ id }, { revokedAt });
  }

  /** Ids of the keys revoked at or after `since`. */
  async revokedSince(since: Date): Promise<string[]> {
    const keys = await this.repository.find({ select: { id: true }, where: { revokedAt: MoreThanOrEqual(since) } });
    return keys.map((key) => key.id);
  }

  async touchLastUsed(id: string, lastUsedAt: Date): Promise<void> {
    await this.repository.update({ id }, { lastUsedAt });
  }

  async hasAny(): Promise<boolean> {
    return (await this.repository.count()) > 0;
  }

  /** Within a transaction: one creation of the initial ADMIN key at a time, until the transaction ends. */
  async lockInitialAdminCreation(): Promise<void> {
    await this.manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['api_key:initial_admin']);
  }

  /** Every key, newest first. */
  page(page: PageRequest): Promise<Page<ApiKeyEntity>> {
    return paginate(this.repository.createQueryBuilder('apiKey'), newestFirst<ApiKeyEntity>('apiKey'), page);
  }
}
