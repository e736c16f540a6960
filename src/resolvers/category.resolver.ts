import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../auth/principal';
import type { CategoryEntity } from '../db/entities/category.entity';
import { DatasetEntity } from '../db/entities/dataset.entity';
import { ImageSplit } from '../db/entities/image.entity';
import type { SnapshotEntity } from '../db/entities/snapshot.entity';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import { Category, CreateCategoryInput, Dataset } from '../schema/dataset.types';
import { Snapshot } from '../schema/image.types';
import type { CategoryService } from '../services/category.service';
import { datasetLoaders, type DatasetLoaderServices } from './dataset-loaders';
import { callerOf } from './principal';

@Resolver(() => Category)
export class CategoryResolver {
  constructor(
    private readonly categories: CategoryService,
    private readonly loaderServices: DatasetLoaderServices,
  ) {}

  @Authorized(Role.VIEWER)
  @Query(() => Category, { nullable: true })
  category(@Arg('id', () => ID) id: string): Promise<CategoryEntity | null> {
    return this.categories.findLive(id);
  }

  @Authorized(Role.LABELER)
  @Mutation(() => Category)
  createCategory(@Arg('input') input: CreateCategoryInput, @Ctx() context: RequestContext): Promise<CategoryEntity> {
    return this.categories.create(input.datasetId, input.name, callerOf(context));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, {
    description:
      'Deletes the category and its images (rows and objects); what snapshots list is kept until they are deleted',
  })
  async deleteCategory(@Arg('id', () => ID) id: string): Promise<boolean> {
    await this.categories.delete(id);
    return true;
  }

  @FieldResolver(() => Dataset)
  async dataset(@Root() category: CategoryEntity, @Ctx() context: RequestContext): Promise<DatasetEntity> {
    const dataset = await context.loaders.byId(DatasetEntity).load(category.datasetId);
    if (!dataset) throw notFound('Dataset', category.datasetId);
    return dataset;
  }

  @FieldResolver(() => Int, {
    description: 'Live images, optionally of one split, defect type, or only good / defective ones',
  })
  async imageCount(
    @Root() category: CategoryEntity,
    @Ctx() context: RequestContext,
    @Arg('split', () => ImageSplit, { nullable: true }) split?: ImageSplit | null,
    @Arg('defectType', () => String, { nullable: true }) defectType?: string | null,
    @Arg('good', () => Boolean, { nullable: true }) good?: boolean | null,
  ): Promise<number> {
    const stats = await datasetLoaders(context, this.loaderServices).categoryStats.load(category.id);
    return stats.counts
      .filter(
        (row) =>
          (!split || row.split === split) &&
          (!defectType || row.defectType === defectType) &&
          (good === null || good === undefined || (row.defectType === null) === good),
      )
      .reduce((sum, row) => sum + row.count, 0);
  }

  @FieldResolver(() => [String], { description: 'Defect types of its live images, sorted' })
  async defectTypes(@Root() category: CategoryEntity, @Ctx() context: RequestContext): Promise<string[]> {
    const stats = await datasetLoaders(context, this.loaderServices).categoryStats.load(category.id);
    return [...new Set(stats.counts.flatMap((row) => (row.defectType === null ? [] : [row.defectType])))].sort();
  }

  @FieldResolver(() => [Snapshot], { description: 'Its snapshots, newest first' })
  snapshots(@Root() category: CategoryEntity, @Ctx() context: RequestContext): Promise<SnapshotEntity[]> {
    return datasetLoaders(context, this.loaderServices).snapshotsByCategory.load(category.id);
  }
}
