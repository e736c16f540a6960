import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { Role } from '../auth/principal';
import { ApiKeyEntity } from '../db/entities/api-key.entity';
import type { Page } from '../db/pagination';
import type { RequestContext } from '../graphql/context';
import { notFound, unauthenticated } from '../errors';
import { ApiKey, ApiKeyConnection, ApiKeyEvent, ApiKeyEventKind, CreatedApiKey, Viewer } from '../schema/api-key.types';
import { PageArgs } from '../schema/connection.types';
import type { ApiKeyService } from '../services/api-key.service';
import type { Topics } from '../pubsub/pubsub';

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  constructor(private readonly apiKeyService: ApiKeyService) {}

  @Query(() => Viewer, { description: 'The API key this request authenticated with' })
  viewer(@Ctx() context: RequestContext): Viewer {
    if (!context.principal) throw unauthenticated();
    return context.principal;
  }

  @Authorized(Role.ADMIN)
  @Query(() => ApiKeyConnection)
  apiKeys(@Args() page: PageArgs): Promise<Page<ApiKeyEntity>> {
    return this.apiKeyService.list(page);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => CreatedApiKey, { description: 'Creates an API key; its secret is returned this once' })
  async createApiKey(@Arg('name') name: string, @Arg('role', () => Role) role: Role): Promise<CreatedApiKey> {
    const { apiKey, secret } = await this.apiKeyService.create(name, role);
    return { id: apiKey.id, name: apiKey.name, role: apiKey.role, secret };
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ApiKey, { description: 'Revokes a key at once; requests with it get UNAUTHENTICATED' })
  revokeApiKey(@Arg('id', () => ID) id: string): Promise<ApiKeyEntity> {
    return this.apiKeyService.revoke(id);
  }

  @Authorized(Role.ADMIN)
  @Subscription(() => ApiKeyEvent, {
    topics: 'API_KEY_EVENT',
    description: 'API keys created or revoked, from any server process',
  })
  async apiKeyEvents(@Root() event: Topics['API_KEY_EVENT'][0], @Ctx() context: RequestContext): Promise<ApiKeyEvent> {
    const apiKey = await context.loaders.byId(ApiKeyEntity).load(event.apiKeyId);
    if (!apiKey) throw notFound('API key', event.apiKeyId);
    return { kind: event.kind === 'CREATED' ? ApiKeyEventKind.CREATED : ApiKeyEventKind.REVOKED, apiKey };
  }
}
