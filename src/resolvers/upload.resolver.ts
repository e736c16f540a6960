import { Arg, Authorized, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import { Role } from '../auth/principal';
import type { RequestContext } from '../graphql/context';
import { ConfirmImageUploadsResult, RequestImageUploadsInput, UploadTarget } from '../schema/upload.types';
import type { ImageUploadService } from '../services/image-upload.service';
import { callerOf } from './principal';

@Resolver()
export class UploadResolver {
  constructor(private readonly uploads: ImageUploadService) {}

  @Authorized(Role.LABELER)
  @Mutation(() => [UploadTarget], {
    description: 'One presigned PUT target per file; PUT the bytes there, then confirmImageUploads',
  })
  requestImageUploads(
    @Arg('input') input: RequestImageUploadsInput,
    @Ctx() context: RequestContext,
  ): Promise<UploadTarget[]> {
    return this.uploads.request(input, callerOf(context));
  }

  @Authorized(Role.LABELER)
  @Mutation(() => ConfirmImageUploadsResult, {
    description: 'Checks what arrived and creates the images; each refused upload comes back with its error code',
  })
  async confirmImageUploads(
    @Arg('uploadIds', () => [ID]) uploadIds: string[],
    @Ctx() context: RequestContext,
  ): Promise<ConfirmImageUploadsResult> {
    const results = await this.uploads.confirm(uploadIds, callerOf(context));
    return {
      images: results.flatMap((result) => (result.image ? [result.image] : [])),
      refused: results.flatMap((result) =>
        result.code ? [{ uploadId: result.uploadId, code: result.code, message: result.message ?? '' }] : [],
      ),
      results,
    };
  }
}
