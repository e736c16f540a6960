import { JOB_COST } from '../graphql/operation-costs';
import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  ID,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { Role } from '../auth/principal';
import { DatasetEntity } from '../db/entities/dataset.entity';
import type { ImportJobEntity } from '../db/entities/import-job.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import { PageArgs } from '../schema/connection.types';
import { Dataset } from '../schema/dataset.types';
import { ImportJob, ImportJobConnection, ImportMvtecDatasetInput, ImportSource } from '../schema/import.types';
import type { MvtecImportService } from '../services/mvtec-import.service';
import { callerOf } from './principal';

/**
 * Built around the service because a subscription's `subscribe` function is declared in the
 * decorator, outside any resolver instance.
 */
export function createImportResolver(imports: MvtecImportService) {
  @Resolver(() => ImportJob)
  class ImportResolver {
    @Authorized(Role.LABELER)
    @Mutation(() => ImportJob, {
      complexity: ({ childComplexity }) => JOB_COST + childComplexity,
      description: 'Imports MVTec-AD-style category folders in the background; follow it with importProgress',
    })
    importMvtecDataset(
      @Arg('input') input: ImportMvtecDatasetInput,
      @Ctx() context: RequestContext,
    ): Promise<ImportJobEntity> {
      return imports.start(input, callerOf(context));
    }

    @Authorized(Role.VIEWER)
    @Query(() => ImportJob, { nullable: true })
    importJob(@Arg('id', () => ID) id: string): Promise<ImportJobEntity | null> {
      return imports.findById(id);
    }

    @Authorized(Role.VIEWER)
    @Query(() => ImportJobConnection, { description: 'Import jobs, newest first, optionally of one dataset' })
    importJobs(
      @Args() page: PageArgs,
      @Arg('datasetId', () => ID, { nullable: true }) datasetId?: string | null,
    ): Promise<Page<ImportJobEntity>> {
      return imports.list(datasetId, page);
    }

    @Authorized(Role.VIEWER)
    @Subscription(() => ImportJob, {
      description:
        'The job’s current state at once, then every change, until it has finished (a finished job: its final state, then the end)',
      subscribe: ({ args }) => imports.watch(String(args.id)),
    })
    importProgress(@Root() job: ImportJobEntity, @Arg('id', () => ID) _id: string): ImportJobEntity {
      return job;
    }

    @FieldResolver(() => Dataset)
    async dataset(@Root() job: ImportJobEntity, @Ctx() context: RequestContext): Promise<DatasetEntity> {
      const dataset = await context.loaders.byId(DatasetEntity).load(job.datasetId);
      if (!dataset) throw notFound('Dataset', job.datasetId);
      return dataset;
    }

    @FieldResolver(() => ImportSource)
    source(@Root() job: ImportJobEntity): ImportSource {
      return { s3Prefix: job.sourceS3Prefix, localPath: job.sourceLocalPath };
    }
  }
  return ImportResolver;
}
