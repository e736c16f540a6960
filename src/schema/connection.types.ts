import type { ClassType } from 'type-graphql';
import { ArgsType, Field, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Relay page information' })
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field()
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, description: 'Page size, 1 to 100 (default 20)' })
  first?: number;

  @Field(() => String, { nullable: true, description: 'Opaque cursor: the endCursor of the previous page' })
  after?: string;
}

/**
 * Builds `<Name>Edge` and `<Name>Connection` types for a node type, following the
 * Relay connection spec. Subclass the result with `@ObjectType()` to register it.
 */
export function Connection<TNode extends object>(name: string, nodeType: ClassType<TNode>) {
  @ObjectType(`${name}Edge`)
  class EdgeType {
    @Field()
    cursor!: string;

    @Field(() => nodeType)
    node!: TNode;
  }

  // Not referenced by any field itself, so type-graphql 2 leaves it out of the schema.
  @ObjectType()
  abstract class ConnectionType {
    @Field(() => [EdgeType])
    edges!: EdgeType[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    @Field(() => Int, { description: 'Number of items matching the filters, over all pages' })
    totalCount!: number;
  }

  return ConnectionType;
}
