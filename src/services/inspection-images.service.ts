import type { Logger } from 'pino';
import type { UrlSigner } from '../auth/signed-urls';
import type { InspectionEntity } from '../db/entities/inspection.entity';
import type { Database } from '../db/repositories';
import type { DatasetImageCache } from '../images/dataset-image-cache';
import { AppError, ErrorCode, notFound } from '../errors';
import { decodeMapObject } from '../formats/anomaly-map-object';
import { encodeNpyFloat32, NPY_CONTENT_TYPE } from '../formats/npy';
import { renderInspectionPngs, type InspectionImageKind, type RgbImage } from '../inference';
import type { PreprocessPool } from '../inference/preprocess-pool';
import { objectKeys } from '../storage/object-keys';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';

export interface InspectionImagesSettings {
  /** How long an image URL in an answer works. */
  urlExpirySeconds: number;
  /** Decompression-bomb guard when the inspected image is decoded again. */
  imageMaxPixels: number;
}

/** The PNGs of an evaluated image (an evaluation keeps no predicted mask). */
export type EvaluationImageKind = Exclude<InspectionImageKind, 'mask'>;
export const EVALUATION_IMAGE_KINDS: readonly EvaluationImageKind[] = ['heatmap', 'overlay'];

export function isEvaluationImageKind(value: string): value is EvaluationImageKind {
  return (EVALUATION_IMAGE_KINDS as readonly string[]).includes(value);
}

/** What a signed URL of this service shows. */
export type SignedFile =
  | { subject: 'inspection'; inspectionId: string; kind: InspectionImageKind }
  /** The inspection's exact anomaly map as an NPY file. */
  | { subject: 'inspection-map'; inspectionId: string }
  | { subject: 'evaluation-image'; evaluationId: string; imageId: string; kind: EvaluationImageKind };

export interface ServedFile {
  bytes: Buffer;
  contentType: string;
}

type RenderedPngs = Partial<Record<InspectionImageKind, Buffer>>;

/** What the PNGs of one inspection or evaluated image are drawn from, and where they are kept. */
interface Drawing {
  /** In-process key of the render (concurrent first requests draw once). */
  key: string;
  readMap: () => Promise<Buffer>;
  modelId: string;
  /** Mask threshold; evaluated images keep no mask, so any value does for them. */
  threshold: number;
  readOriginal: () => Promise<Buffer | null>;
  width: number;
  height: number;
  objectKeyOf: (kind: InspectionImageKind) => string | null;
  logContext: Record<string, string>;
}

/**
 * The images behind signed URLs of this service (they work without an API key until they
 * expire, as presigned S3 URLs do), off the answers' path: an inspection's heatmap, overlay and
 * mask PNGs and its raw map as NPY, and an evaluated image's heatmap and overlay PNGs.
 *
 * `inspect` and evaluations store only the anomaly map. The first request of a PNG draws all of
 * its subject's PNGs from the stored map, the threshold, the model's map statistics and the
 * original image (the same functions as the inspect answer, so the same pixels), answers with
 * its own and stores them all in S3; later requests, by any replica, read them from there.
 * Inspection rows from before this kept their PNGs under the same keys.
 */
export class InspectionImages {
  /** Renders in progress in this process, by Drawing.key. */
  private readonly rendering = new Map<string, Promise<RenderedPngs>>();

  constructor(
    private readonly db: Database,
    private readonly objectStore: ObjectStore,
    private readonly datasetImages: DatasetImageCache,
    private readonly preprocessing: PreprocessPool,
    private readonly signer: UrlSigner,
    private readonly settings: InspectionImagesSettings,
    private readonly logger: Logger,
  ) {}

  /** Path of a file below the service's base URL (what is signed). */
  static path(file: SignedFile): string {
    switch (file.subject) {
      case 'inspection':
        return `/inspections/${file.inspectionId}/${file.kind}.png`;
      case 'inspection-map':
        return `/inspections/${file.inspectionId}/anomaly-map.npy`;
      case 'evaluation-image':
        return `/evaluations/${file.evaluationId}/images/${file.imageId}/${file.kind}.png`;
    }
  }

  /** A signed URL of the file, valid for urlExpirySeconds; `baseUrl` is where clients reach this service. */
  url(baseUrl: string, file: SignedFile, now = Date.now()): string {
    const expiresAt = new Date(now + this.settings.urlExpirySeconds * 1000);
    return baseUrl + this.signer.sign(InspectionImages.path(file), expiresAt);
  }

  /** Throws INVALID_SIGNATURE or URL_EXPIRED unless the URL's query parameters sign this file's path. */
  checkSignature(file: SignedFile, expires: unknown, signature: unknown): void {
    const refusal = this.signer.check(InspectionImages.path(file), expires, signature);
    const askAgain = file.subject === 'evaluation-image' ? 'the evaluation’s images' : 'the inspection';
    if (refusal === 'INVALID_SIGNATURE')
      throw new AppError(ErrorCode.INVALID_SIGNATURE, `the URL’s signature does not match; ask for ${askAgain} again`);
    if (refusal === 'EXPIRED')
      throw new AppError(ErrorCode.URL_EXPIRED, `the URL has expired; ask for ${askAgain} again for a fresh one`);
  }

  /** NOT_FOUND without such a subject; INPUT_IMAGE_GONE for an overlay whose image is gone. */
  async serve(file: SignedFile): Promise<ServedFile> {
    switch (file.subject) {
      case 'inspection':
        return { bytes: await this.png(file.inspectionId, file.kind), contentType: 'image/png' };
      case 'inspection-map':
        return { bytes: await this.inspectionMapNpy(file.inspectionId), contentType: NPY_CONTENT_TYPE };
      case 'evaluation-image':
        return {
          bytes: await this.evaluationImagePng(file.evaluationId, file.imageId, file.kind),
          contentType: 'image/png',
        };
    }
  }

  /** An inspection's PNG, from S3 or drawn now. */
  async png(inspectionId: string, kind: InspectionImageKind): Promise<Buffer> {
    const id = checkedId(inspectionId, 'Inspection');
    const inProgress = this.rendering.get(`inspection:${id}`);
    if (inProgress) return pick(await inProgress, kind);
    const row = await this.db.inspections.findById(id);
    if (!row) throw notFound('Inspection', id);
    return this.drawnPng(this.inspectionDrawing(row), kind);
  }

  /** An inspection's exact anomaly map, at the model's input size, as an NPY file (float32, shape (height, width)). */
  async inspectionMapNpy(inspectionId: string): Promise<Buffer> {
    const id = checkedId(inspectionId, 'Inspection');
    const row = await this.db.inspections.findById(id);
    if (!row) throw notFound('Inspection', id);
    // Old objects are AMAP, new ones already NPY: decoding both and writing NPY serves either.
    const map = decodeMapObject(await this.readInspectionMap(row));
    return encodeNpyFloat32({ height: map.height, width: map.width, values: map.map });
  }

  /** An evaluated image's PNG, from S3 or drawn now. NOT_FOUND when the evaluation has no result for the image. */
  async evaluationImagePng(evaluationId: string, imageId: string, kind: EvaluationImageKind): Promise<Buffer> {
    const evaluation = checkedId(evaluationId, 'Evaluation');
    const image = checkedId(imageId, 'Image');
    const inProgress = this.rendering.get(`evaluation:${evaluation}/${image}`);
    if (inProgress) return pick(await inProgress, kind);
    const result = await this.db.evaluations.imageResultForDrawing(evaluation, image);
    if (!result) throw notFound('Result of the evaluation for image', `${evaluation} / ${image}`);
    return this.drawnPng(
      {
        key: `evaluation:${evaluation}/${image}`,
        readMap: () => this.objectStore.get(result.mapObjectKey),
        modelId: result.modelId,
        threshold: result.threshold ?? Number.POSITIVE_INFINITY,
        readOriginal: () => this.datasetImages.get(result.imageObjectKey).catch(() => null),
        width: result.width,
        height: result.height,
        objectKeyOf: (drawn) =>
          drawn === 'mask' ? null : objectKeys.evaluationImageArtifact(evaluation, image, drawn),
        logContext: { evaluationId: evaluation, imageId: image },
      },
      kind,
    );
  }

  private inspectionDrawing(row: InspectionEntity): Drawing {
    return {
      key: `inspection:${row.id}`,
      readMap: () => this.readInspectionMap(row),
      modelId: row.modelId,
      threshold: row.threshold,
      readOriginal: () => this.readInspected(row),
      width: row.width,
      height: row.height,
      objectKeyOf: (kind) =>
        kind === 'heatmap' ? row.heatmapObjectKey : kind === 'overlay' ? row.overlayObjectKey : row.maskObjectKey,
      logContext: { inspectionId: row.id },
    };
  }

  private async drawnPng(drawing: Drawing, kind: InspectionImageKind): Promise<Buffer> {
    const key = drawing.objectKeyOf(kind);
    const stored = key ? await this.objectStore.find(key) : null;
    if (stored) return stored;
    return pick(await this.renderOnce(drawing), kind);
  }

  private renderOnce(drawing: Drawing): Promise<RenderedPngs> {
    const existing = this.rendering.get(drawing.key);
    if (existing) return existing;
    const rendering = this.render(drawing);
    this.rendering.set(drawing.key, rendering);
    // Forgotten once stored (or failed): from then on S3 answers.
    rendering
      .then((pngs) => this.store(drawing, pngs))
      .catch(() => undefined)
      .finally(() => this.rendering.delete(drawing.key));
    return rendering;
  }

  private async render(drawing: Drawing): Promise<RenderedPngs> {
    const [mapBytes, model, originalBytes] = await Promise.all([
      drawing.readMap(),
      this.db.models.findById(drawing.modelId),
      drawing.readOriginal(),
    ]);
    if (!model?.mapStats) throw notFound('Model', drawing.modelId);
    const original: RgbImage | null = originalBytes
      ? await this.preprocessing.decodeRgb(originalBytes, this.settings.imageMaxPixels)
      : null;
    const map = decodeMapObject(mapBytes);
    const pngs = renderInspectionPngs({
      anomalyMap: map.map,
      mapWidth: map.width,
      mapHeight: map.height,
      threshold: drawing.threshold,
      mapStats: model.mapStats,
      original,
      width: drawing.width,
      height: drawing.height,
    });
    const [heatmap, mask, overlay] = await Promise.all([pngs.heatmap, pngs.mask, pngs.overlay]);
    return overlay ? { heatmap, mask, overlay } : { heatmap, mask };
  }

  /** The exact map: in the row until it moved to S3 (AnomalyMapMover). */
  private async readInspectionMap(row: InspectionEntity): Promise<Buffer> {
    if (row.mapObjectKey) return this.objectStore.get(row.mapObjectKey);
    const pending = await this.db.inspections.pendingMap(row.id);
    if (pending) return pending;
    // Moved since the row was read.
    const moved = (await this.db.inspections.findById(row.id))?.mapObjectKey;
    if (!moved) throw notFound('Anomaly map of inspection', row.id);
    return this.objectStore.get(moved);
  }

  /** The inspected image's bytes; null when they are gone (a dataset image deleted since). */
  private async readInspected(row: InspectionEntity): Promise<Buffer | null> {
    if (row.inputObjectKey) return this.objectStore.find(row.inputObjectKey);
    if (!row.imageId) return null;
    const key = (await this.db.images.findById(row.imageId))?.objectKey;
    return key ? this.datasetImages.get(key).catch(() => null) : null;
  }

  /** Best effort: a PNG not stored is drawn again on its next request. */
  private async store(drawing: Drawing, pngs: RenderedPngs): Promise<void> {
    await Promise.all(
      Object.entries(pngs).map(async ([kind, png]) => {
        const key = drawing.objectKeyOf(kind as InspectionImageKind);
        if (!key) return;
        try {
          await this.objectStore.put(key, png, 'image/png');
        } catch (error) {
          this.logger.warn({ err: error, ...drawing.logContext, kind }, 'could not store a drawn image');
        }
      }),
    );
  }
}

function checkedId(id: string, what: string): string {
  if (!isUuid(id)) throw notFound(what, id);
  return id.toLowerCase();
}

function pick(pngs: RenderedPngs, kind: InspectionImageKind): Buffer {
  const png = pngs[kind];
  if (!png)
    throw new AppError(
      ErrorCode.INPUT_IMAGE_GONE,
      'the image was deleted before this overlay was first drawn; the heatmap (and an inspection’s mask) remain',
    );
  return png;
}
