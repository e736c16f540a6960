import { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError, ErrorCode } from '../errors';
import { isInspectionImageKind } from '../inference';
import type { InspectionImages } from '../services/inspection-images.service';

const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.INVALID_SIGNATURE]: 403,
  [ErrorCode.URL_EXPIRED]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.INPUT_IMAGE_GONE]: 410,
};

/**
 * GET /inspections/:id/{heatmap,overlay,mask}.png?expires=…&signature=… : the signed URLs of
 * an inspection's images (InspectionImages). No API key: the signature is the permission.
 */
export function inspectionImagesRouter(images: InspectionImages, logger: Logger): Router {
  const router = Router();
  router.get('/inspections/:inspectionId/:file', async (request, response) => {
    const { inspectionId, file } = request.params;
    const kind = file.endsWith('.png') ? file.slice(0, -'.png'.length) : '';
    try {
      if (!isInspectionImageKind(kind)) throw new AppError(ErrorCode.NOT_FOUND, `there is no ${file} of an inspection`);
      images.checkSignature(inspectionId, kind, request.query.expires, request.query.signature);
      const png = await images.png(inspectionId, kind);
      const expires = Number(request.query.expires);
      response
        .status(200)
        .type('image/png')
        // The bytes never change; a browser may keep them as long as its URL works.
        .setHeader(
          'Cache-Control',
          `private, max-age=${Math.max(0, expires - Math.floor(Date.now() / 1000))}, immutable`,
        )
        .send(png);
    } catch (error) {
      sendError(response, error, logger);
    }
  });
  return router;
}

function sendError(response: Response, error: unknown, logger: Logger): void {
  if (error instanceof AppError && STATUS_BY_CODE[error.code]) {
    response.status(STATUS_BY_CODE[error.code] as number).json({ error: { code: error.code, message: error.message } });
    return;
  }
  logger.error({ err: error }, 'could not serve an inspection image');
  response.status(500).json({ error: { code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'Internal server error' } });
}
