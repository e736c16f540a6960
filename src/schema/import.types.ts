import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ImportJobStatus } from '../db/entities/import-job.entity';
import { Connection } from './connection.types';

registerEnumType(ImportJobStatus, { name: 'ImportJobStatus' });

@ObjectType({ description: 'A file (path relative to the source) that was not imported, and why' })
export class ImportProblem {
  @Field()
  path!: string;

  @Field()
  code!: string;

  @Field()
  message!: string;
}

@ObjectType({ description: 'Where an import reads from: exactly one field is set' })
export class ImportSource {
  @Field(() => String, { nullable: true })
  s3Prefix!: string | null;

  @Field(() => String, { nullable: true })
  localPath!: string | null;
}

@ObjectType({ description: 'A background import of MVTec-AD-style folders into a dataset' })
export class ImportJob {
  @Field(() => ID)
  id!: string;

  @Field(() => ImportJobStatus)
  status!: ImportJobStatus;

  @Field(() => Int, { description: 'Images handled so far (imported, duplicate or refused)' })
  processed!: number;

  @Field(() => Int, { nullable: true, description: 'Images found in the source; null until it has been scanned' })
  total!: number | null;

  @Field(() => Int)
  imported!: number;

  @Field(() => Int, { description: 'Images skipped because their category already holds the same bytes' })
  duplicates!: number;

  @Field(() => [ImportProblem], { description: 'The first 1000 problems' })
  errors!: ImportProblem[];

  @Field(() => Int, { description: 'All problems, also those beyond the first 1000' })
  errorCount!: number;

  @Field(() => [String], { nullable: true, description: 'Category folders asked for; null: all' })
  categories!: string[] | null;

  @Field(() => Int, { description: 'Times a worker started on it (more than one after a restart)' })
  attempts!: number;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;

  @Field(() => Date, { nullable: true })
  startedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;
}

@ObjectType()
export class ImportJobConnection extends Connection('ImportJob', ImportJob) {}

@InputType({
  description: 'Exactly one of s3Prefix (a folder in the service’s bucket) and localPath (below IMPORT_ROOTS)',
})
export class ImportSourceInput {
  @Field(() => String, { nullable: true })
  s3Prefix?: string | null;

  @Field(() => String, { nullable: true })
  localPath?: string | null;
}

@InputType()
export class ImportMvtecDatasetInput {
  @Field(() => ID)
  datasetId!: string;

  @Field(() => ImportSourceInput)
  source!: ImportSourceInput;

  @Field(() => [String], {
    nullable: true,
    description: 'Category folders to import (plain folder names); omit for every folder of the source',
  })
  categories?: string[] | null;
}
