import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { ImageSplit } from '../db/entities/image.entity';
import { Image } from './image.types';

@InputType()
export class UploadFileInput {
  @Field({ description: 'Shown with the image; never used for storage keys' })
  filename!: string;

  @Field({ description: 'image/png, image/jpeg, image/bmp or image/tiff' })
  contentType!: string;

  @Field(() => Int, { description: 'Exact size of the bytes to be PUT; above UPLOAD_MAX_BYTES is refused' })
  byteSize!: number;

  @Field({ description: 'Hex SHA-256 of the bytes; checked on confirm' })
  sha256!: string;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: 'Also upload a ground-truth mask (defective TEST images need one)',
  })
  withMask?: boolean | null;

  @Field(() => String, { nullable: true, description: 'Content type of the mask (default image/png)' })
  maskContentType?: string | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Size of the mask; when given, it is signed into the mask URL and checked',
  })
  maskByteSize?: number | null;
}

@InputType()
export class RequestImageUploadsInput {
  @Field(() => ID)
  categoryId!: string;

  @Field(() => ImageSplit)
  split!: ImageSplit;

  @Field(() => String, { nullable: true, description: 'Omit for good images' })
  defectType?: string | null;

  @Field(() => [UploadFileInput])
  files!: UploadFileInput[];
}

@ObjectType()
export class HttpHeader {
  @Field()
  name!: string;

  @Field()
  value!: string;
}

@ObjectType({ description: 'Where to PUT one file: send exactly `headers`, then confirm with uploadId' })
export class UploadTarget {
  @Field(() => ID)
  uploadId!: string;

  @Field()
  url!: string;

  @Field(() => String, { nullable: true, description: 'Where to PUT the mask, when withMask' })
  maskUrl!: string | null;

  @Field(() => [HttpHeader])
  headers!: HttpHeader[];

  @Field(() => [HttpHeader], { nullable: true })
  maskHeaders!: HttpHeader[] | null;

  @Field({ description: 'The URLs stop working then; confirming later is refused with UPLOAD_EXPIRED' })
  expiresAt!: Date;
}

@ObjectType({ description: 'An upload that was not turned into an image, and why (a stable error code)' })
export class RefusedUpload {
  @Field(() => ID)
  uploadId!: string;

  @Field({
    description:
      'e.g. CHECKSUM_MISMATCH, INVALID_IMAGE, MASK_MISMATCH, DUPLICATE_IMAGE, UPLOAD_EXPIRED, UPLOAD_INCOMPLETE',
  })
  code!: string;

  @Field()
  message!: string;
}

@ObjectType()
export class UploadResult {
  @Field(() => ID)
  uploadId!: string;

  @Field(() => Image, { nullable: true })
  image!: Image | null;

  @Field(() => String, { nullable: true })
  code!: string | null;

  @Field(() => String, { nullable: true })
  message!: string | null;
}

@ObjectType()
export class ConfirmImageUploadsResult {
  @Field(() => [Image], { description: 'The images created' })
  images!: Image[];

  @Field(() => [RefusedUpload], {
    description:
      'The uploads refused. They are removed, except UPLOAD_INCOMPLETE and INTERNAL_SERVER_ERROR ones, which may be confirmed again',
  })
  refused!: RefusedUpload[];

  @Field(() => [UploadResult], { description: 'One result per upload id, in the order given' })
  results!: UploadResult[];
}
