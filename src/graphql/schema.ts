import type { GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType, type NonEmptyArray } from 'type-graphql';
import type { AppPubSub } from '../pubsub/pubsub';
import { AuthenticationGuard, RoleAuthChecker } from './auth-guard';

/** A resolver class and the instance that serves it (resolvers get services by constructor). */
export type ResolverBinding = [resolverClass: abstract new (...args: never[]) => object, instance: object];

/** type-graphql asks this for resolver and middleware instances. */
class BindingContainer implements ContainerType {
  private readonly instances = new Map<unknown, object>();

  constructor(bindings: ResolverBinding[]) {
    for (const [resolverClass, instance] of bindings) this.instances.set(resolverClass, instance);
    this.instances.set(AuthenticationGuard, new AuthenticationGuard());
    this.instances.set(RoleAuthChecker, new RoleAuthChecker());
  }

  get(someClass: unknown): object {
    const instance = this.instances.get(someClass);
    if (!instance)
      throw new Error(`no instance bound for ${String((someClass as { name?: string }).name ?? someClass)}`);
    return instance;
  }
}

export async function buildAppSchema(bindings: ResolverBinding[], pubSub: AppPubSub): Promise<GraphQLSchema> {
  const resolvers = bindings.map(([resolverClass]) => resolverClass) as unknown as NonEmptyArray<Function>;
  return buildSchema({
    resolvers,
    container: new BindingContainer(bindings),
    authChecker: RoleAuthChecker,
    authMode: 'error',
    globalMiddlewares: [AuthenticationGuard],
    pubSub,
    validate: false,
    emitSchemaFile: false,
  });
}
