import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { Connection } from './connection.types';

@ObjectType({ description: 'A collection of categories, e.g. MVTec AD' })
export class Dataset {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field()
  description!: string;

  @Field()
  createdAt!: Date;
}

@ObjectType({ description: 'One kind of object in a dataset (e.g. bottle); one model is trained per category' })
export class Category {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'A plain folder name, as in the MVTec AD layout' })
  name!: string;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'Set when deleted while snapshots still refer to it' })
  deletedAt!: Date | null;
}

@ObjectType()
export class DatasetConnection extends Connection('Dataset', Dataset) {}

@InputType()
export class CreateDatasetInput {
  @Field({ description: 'Unique among datasets; 1 to 100 characters' })
  name!: string;

  @Field(() => String, { nullable: true, defaultValue: '' })
  description?: string | null;
}

@InputType()
export class CreateCategoryInput {
  @Field(() => ID)
  datasetId!: string;

  @Field({ description: "A plain folder name: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit" })
  name!: string;
}
