import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../auth/principal';
import { CategoryEntity } from '../db/entities/category.entity';
import type { ImageEntity } from '../db/entities/image.entity';
import type { Page } from '../db/pagination';
import { notFound } from '../errors';
import type { RequestContext } from '../graphql/context';
import { Category } from '../schema/dataset.types';
import { Image, ImageConnection, ImagesArgs } from '../schema/image.types';
import type { CategoryService } from '../services/category.service';
import { checkDefectType } from '../domain/dataset-rules';
import type { ImageService } from '../services/image.service';

@Resolver(() => Image)
export class ImageResolver {
  constructor(
    private readonly imageService: ImageService,
    private readonly categories: CategoryService,
  ) {}

  @Authorized(Role.VIEWER)
  @Query(() => ImageConnection, { description: 'Live images of a category, newest first, optionally filtered' })
  async images(@Args() args: ImagesArgs): Promise<Page<ImageEntity>> {
    await this.categories.requireLive(args.categoryId);
    return this.imageService.list(
      { categoryId: args.categoryId, split: args.split, defectType: checkDefectType(args.defectType), good: args.good },
      args,
    );
  }

  @Authorized(Role.VIEWER)
  @Query(() => Image, { nullable: true, description: 'Any image by id, also one deleted but kept for a snapshot' })
  image(@Arg('id', () => ID) id: string): Promise<ImageEntity | null> {
    return this.imageService.findById(id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, {
    description:
      'Deletes the image and its objects; if a snapshot lists it, it is hidden now and removed with its last snapshot',
  })
  async deleteImage(@Arg('id', () => ID) id: string): Promise<boolean> {
    await this.imageService.delete(id);
    return true;
  }

  @FieldResolver(() => Boolean, { description: 'No defect (defectType is null)' })
  good(@Root() image: ImageEntity): boolean {
    return image.defectType === null;
  }

  @FieldResolver(() => String, {
    description: 'Presigned GET URL of the image bytes (expires after PRESIGNED_URL_EXPIRY_SECONDS)',
  })
  url(@Root() image: ImageEntity): Promise<string> {
    return this.imageService.presignedUrl(image);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'Presigned GET URL of the ground-truth mask, for defective TEST images',
  })
  maskUrl(@Root() image: ImageEntity): Promise<string | null> {
    return this.imageService.presignedMaskUrl(image);
  }

  @FieldResolver(() => Category)
  async category(@Root() image: ImageEntity, @Ctx() context: RequestContext): Promise<CategoryEntity> {
    const category = await context.loaders.byId(CategoryEntity).load(image.categoryId);
    if (!category) throw notFound('Category', image.categoryId);
    return category;
  }
}
