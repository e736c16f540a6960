import { ApiKeyEntity } from './api-key.entity';

/** Every entity TypeORM knows; each domain adds its own here. */
export const entities = [ApiKeyEntity];
