import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../auth/principal';
import { CategoryEntity } from '../db/entities/category.entity';
import type { ImageEntity } from '../db/entities/image.entity';
import type { SnapshotEntity } from '../db/entities/snapshot.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import { Category } from '../schema/dataset.types';
import { ImageConnection, ImageFilterArgs, Snapshot } from '../schema/image.types';
import { checkDefectType } from '../domain/dataset-rules';
import type { ImageService } from '../services/image.service';
import type { SnapshotService } from '../services/snapshot.service';
import { callerOf } from './principal';

@Resolver(() => Snapshot)
export class SnapshotResolver {
  constructor(
    private readonly snapshotService: SnapshotService,
    private readonly imageService: ImageService,
  ) {}

  @Authorized(Role.VIEWER)
  @Query(() => [Snapshot], { description: 'Snapshots of a category, newest first' })
  snapshots(@Arg('categoryId', () => ID) categoryId: string): Promise<SnapshotEntity[]> {
    return this.snapshotService.listByCategories([categoryId]);
  }

  @Authorized(Role.VIEWER)
  @Query(() => Snapshot, { nullable: true })
  snapshot(@Arg('id', () => ID) id: string): Promise<SnapshotEntity | null> {
    return this.snapshotService.findById(id);
  }

  @Authorized(Role.LABELER)
  @Mutation(() => Snapshot, {
    description: 'Freezes the list of the category’s live images under a name (unique within the category)',
  })
  createSnapshot(
    @Arg('categoryId', () => ID) categoryId: string,
    @Arg('name') name: string,
    @Ctx() context: RequestContext,
  ): Promise<SnapshotEntity> {
    return this.snapshotService.create(categoryId, name, callerOf(context));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, {
    description: 'Deletes the snapshot; images deleted meanwhile that no other snapshot lists go with it',
  })
  async deleteSnapshot(@Arg('id', () => ID) id: string): Promise<boolean> {
    await this.snapshotService.delete(id);
    return true;
  }

  @FieldResolver(() => Category)
  async category(@Root() snapshot: SnapshotEntity, @Ctx() context: RequestContext): Promise<CategoryEntity> {
    const category = await context.loaders.byId(CategoryEntity).load(snapshot.categoryId);
    if (!category) throw notFound('Category', snapshot.categoryId);
    return category;
  }

  @FieldResolver(() => ImageConnection, { description: 'The images it lists (also ones deleted since), newest first' })
  images(@Root() snapshot: SnapshotEntity, @Args() args: ImageFilterArgs): Promise<Page<ImageEntity>> {
    return this.imageService.list(
      {
        categoryId: snapshot.categoryId,
        snapshotId: snapshot.id,
        split: args.split,
        defectType: checkDefectType(args.defectType),
        good: args.good,
      },
      args,
    );
  }
}
