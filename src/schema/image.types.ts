import { ArgsType, Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ImageSplit } from '../db/entities/image.entity';
import { Connection, PageArgs } from './connection.types';

registerEnumType(ImageSplit, {
  name: 'Split',
  description: 'TRAIN holds good images only; TEST holds good and defective ones',
});

@ObjectType({ description: 'One image of a category, stored in S3; url and maskUrl are presigned GET URLs' })
export class Image {
  @Field(() => ID)
  id!: string;

  @Field(() => ImageSplit)
  split!: ImageSplit;

  @Field(() => String, {
    nullable: true,
    description: 'null for a good image, else the defect folder name, e.g. crack',
  })
  defectType!: string | null;

  @Field(() => Int)
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field(() => Int, { description: '1 for grayscale (expanded to 3 at inference), 3 for colour' })
  channels!: number;

  @Field({ description: 'png, jpeg, bmp or tiff' })
  format!: string;

  @Field(() => Int)
  byteSize!: number;

  @Field({ description: 'Lowercase hex SHA-256 of the bytes' })
  sha256!: string;

  @Field({ description: 'As uploaded (or the path in an imported folder); for display only' })
  originalFilename!: string;

  @Field(() => ID, { nullable: true, description: 'API key that uploaded or imported it' })
  uploadedBy!: string | null;

  @Field(() => ID, { nullable: true, description: 'The import job that added it, if any' })
  importJobId!: string | null;

  @Field()
  createdAt!: Date;

  @Field(() => Date, {
    nullable: true,
    description: 'Set when deleted while a snapshot lists it: hidden from `images`, kept for the snapshot',
  })
  deletedAt!: Date | null;
}

@ObjectType()
export class ImageConnection extends Connection('Image', Image) {}

@ArgsType()
export class ImageFilterArgs extends PageArgs {
  @Field(() => ImageSplit, { nullable: true })
  split?: ImageSplit | null;

  @Field(() => String, { nullable: true })
  defectType?: string | null;

  @Field(() => Boolean, { nullable: true, description: 'true: good images only; false: defective ones only' })
  good?: boolean | null;
}

@ArgsType()
export class ImagesArgs extends ImageFilterArgs {
  @Field(() => ID)
  categoryId!: string;
}

@ObjectType({ description: 'An immutable, named list of a category’s images at one moment' })
export class Snapshot {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => Int)
  imageCount!: number;

  @Field(() => ID, { nullable: true })
  createdBy!: string | null;

  @Field()
  createdAt!: Date;
}
