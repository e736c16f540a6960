import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../auth/principal';
import type { CategoryEntity } from '../db/entities/category.entity';
import type { DatasetEntity } from '../db/entities/dataset.entity';
import type { Page } from '../db/pagination';
import type { RequestContext } from '../graphql/context';
import { PageArgs } from '../schema/connection.types';
import { Category, CreateDatasetInput, Dataset, DatasetConnection } from '../schema/dataset.types';
import type { DatasetService } from '../services/dataset.service';
import { datasetLoaders, type DatasetLoaderServices } from './dataset-loaders';
import { callerOf } from './principal';

@Resolver(() => Dataset)
export class DatasetResolver {
  constructor(
    private readonly datasetService: DatasetService,
    private readonly loaderServices: DatasetLoaderServices,
  ) {}

  @Authorized(Role.VIEWER)
  @Query(() => DatasetConnection, { description: 'Datasets, newest first' })
  datasets(@Args() page: PageArgs): Promise<Page<DatasetEntity>> {
    return this.datasetService.list(page);
  }

  @Authorized(Role.VIEWER)
  @Query(() => Dataset, { nullable: true })
  dataset(@Arg('id', () => ID) id: string): Promise<DatasetEntity | null> {
    return this.datasetService.findLive(id);
  }

  @Authorized(Role.LABELER)
  @Mutation(() => Dataset)
  createDataset(@Arg('input') input: CreateDatasetInput, @Ctx() context: RequestContext): Promise<DatasetEntity> {
    return this.datasetService.create(input.name, input.description, callerOf(context));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, {
    description:
      'Deletes the dataset, its categories and images (rows and objects); what snapshots list is kept until they are deleted',
  })
  async deleteDataset(@Arg('id', () => ID) id: string): Promise<boolean> {
    await this.datasetService.delete(id);
    return true;
  }

  @FieldResolver(() => [Category], { description: 'Its categories, by name' })
  categories(@Root() dataset: DatasetEntity, @Ctx() context: RequestContext): Promise<CategoryEntity[]> {
    return datasetLoaders(context, this.loaderServices).categoriesByDataset.load(dataset.id);
  }
}
