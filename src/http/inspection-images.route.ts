import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError, ErrorCode } from '../errors';
import { isInspectionImageKind } from '../inference';
import { isEvaluationImageKind, type InspectionImages, type SignedFile } from '../services/inspection-images.service';

const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.INVALID_SIGNATURE]: 403,
  [ErrorCode.URL_EXPIRED]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.INPUT_IMAGE_GONE]: 410,
};

const MAP_FILE = 'anomaly-map.npy';

/**
 * The signed URLs of InspectionImages, `?expires=…&signature=…`. No API key: the signature is
 * the permission.
 *   GET /inspections/:id/{heatmap,overlay,mask}.png    an inspection's images
 *   GET /inspections/:id/anomaly-map.npy                its exact anomaly map (numpy.load reads it)
 *   GET /evaluations/:id/images/:imageId/{heatmap,overlay}.png    an evaluated image's images
 */
export function inspectionImagesRouter(images: InspectionImages, logger: Logger): Router {
  const router = Router();
  const serve = async (request: Request, response: Response, file: SignedFile | null): Promise<void> => {
    try {
      if (!file) throw new AppError(ErrorCode.NOT_FOUND, `there is no such file: ${request.path}`);
      images.checkSignature(file, request.query.expires, request.query.signature);
      const served = await images.serve(file);
      const expires = Number(request.query.expires);
      response
        .status(200)
        .type(served.contentType)
        // The bytes never change; a browser may keep them as long as its URL works.
        .setHeader(
          'Cache-Control',
          `private, max-age=${Math.max(0, expires - Math.floor(Date.now() / 1000))}, immutable`,
        );
      if (file.subject === 'inspection-map')
        response.attachment(`inspection-${file.inspectionId.toLowerCase()}-anomaly-map.npy`);
      response.send(served.bytes);
    } catch (error) {
      sendError(response, error, logger);
    }
  };
  router.get('/inspections/:inspectionId/:file', (request, response) => {
    const { inspectionId, file } = request.params;
    const kind = pngKind(file);
    const signed: SignedFile | null =
      file === MAP_FILE
        ? { subject: 'inspection-map', inspectionId }
        : isInspectionImageKind(kind)
          ? { subject: 'inspection', inspectionId, kind }
          : null;
    void serve(request, response, signed);
  });
  router.get('/evaluations/:evaluationId/images/:imageId/:file', (request, response) => {
    const { evaluationId, imageId, file } = request.params;
    const kind = pngKind(file);
    void serve(
      request,
      response,
      isEvaluationImageKind(kind) ? { subject: 'evaluation-image', evaluationId, imageId, kind } : null,
    );
  });
  return router;
}

function pngKind(file: string): string {
  return file.endsWith('.png') ? file.slice(0, -'.png'.length) : '';
}

function sendError(response: Response, error: unknown, logger: Logger): void {
  if (error instanceof AppError && STATUS_BY_CODE[error.code]) {
    response.status(STATUS_BY_CODE[error.code] as number).json({ error: { code: error.code, message: error.message } });
    return;
  }
  logger.error({ err: error }, 'could not serve a signed file');
  response.status(500).json({ error: { code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'Internal server error' } });
}
