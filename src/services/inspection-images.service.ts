import type { Logger } from 'pino';
import type { UrlSigner } from '../auth/signed-urls';
import type { InspectionEntity } from '../db/entities/inspection.entity';
import type { Database } from '../db/repositories';
import type { DatasetImageCache } from '../images/dataset-image-cache';
import { AppError, ErrorCode, notFound } from '../errors';
import { decodeMapObject } from '../formats/anomaly-map-object';
import { renderInspectionPngs, type InspectionImageKind, type RgbImage } from '../inference';
import type { PreprocessPool } from '../inference/preprocess-pool';
import type { ObjectStore } from '../storage/object-store';
import { isUuid } from '../utils/ids';

export interface InspectionImagesSettings {
  /** How long an image URL in an answer works. */
  urlExpirySeconds: number;
  /** Decompression-bomb guard when the inspected image is decoded again. */
  imageMaxPixels: number;
}

type RenderedPngs = Partial<Record<InspectionImageKind, Buffer>>;

/**
 * An inspection's heatmap, overlay and mask PNGs, off the answer's path: `inspect` stores only
 * the exact anomaly map next to its row, and its answer carries signed URLs of this service
 * (they work without an API key until they expire, as presigned S3 URLs do). The first request
 * of any of the three draws all of them from the stored map, the row's threshold, the model's
 * map statistics and the inspected image (the same functions as the answer, so the same pixels),
 * answers with its own and stores all three in S3 under the row's keys; later requests, by any
 * replica, read them from there. Rows from before this kept their PNGs under the same keys.
 */
export class InspectionImages {
  /** Renders in progress in this process, by inspection id: concurrent first requests draw once. */
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

  /** Path of an inspection's image below the service's base URL (what is signed). */
  static path(inspectionId: string, kind: InspectionImageKind): string {
    return `/inspections/${inspectionId}/${kind}.png`;
  }

  /** A signed URL of the image, valid for urlExpirySeconds; `baseUrl` is where clients reach this service. */
  url(baseUrl: string, inspectionId: string, kind: InspectionImageKind, now = Date.now()): string {
    const expiresAt = new Date(now + this.settings.urlExpirySeconds * 1000);
    return baseUrl + this.signer.sign(InspectionImages.path(inspectionId, kind), expiresAt);
  }

  /** Throws INVALID_SIGNATURE or URL_EXPIRED unless the URL's query parameters sign this path. */
  checkSignature(inspectionId: string, kind: InspectionImageKind, expires: unknown, signature: unknown): void {
    const refusal = this.signer.check(InspectionImages.path(inspectionId, kind), expires, signature);
    if (refusal === 'INVALID_SIGNATURE')
      throw new AppError(
        ErrorCode.INVALID_SIGNATURE,
        'the URL’s signature does not match; ask for the inspection again',
      );
    if (refusal === 'EXPIRED')
      throw new AppError(ErrorCode.URL_EXPIRED, 'the URL has expired; ask for the inspection again for a fresh one');
  }

  /** The PNG, from S3 or drawn now. NOT_FOUND without such an inspection, INPUT_IMAGE_GONE (overlay only). */
  async png(inspectionId: string, kind: InspectionImageKind): Promise<Buffer> {
    if (!isUuid(inspectionId)) throw notFound('Inspection', inspectionId);
    const id = inspectionId.toLowerCase();
    const inProgress = this.rendering.get(id);
    if (inProgress) return pick(await inProgress, kind);
    const row = await this.db.inspections.findById(id);
    if (!row) throw notFound('Inspection', id);
    const stored = await this.objectStore.find(objectKeyOf(row, kind));
    if (stored) return stored;
    return pick(await this.renderOnce(row), kind);
  }

  private renderOnce(row: InspectionEntity): Promise<RenderedPngs> {
    const existing = this.rendering.get(row.id);
    if (existing) return existing;
    const rendering = this.render(row);
    this.rendering.set(row.id, rendering);
    // Forgotten once stored (or failed): from then on S3 answers.
    rendering
      .then((pngs) => this.store(row, pngs))
      .catch(() => undefined)
      .finally(() => this.rendering.delete(row.id));
    return rendering;
  }

  private async render(row: InspectionEntity): Promise<RenderedPngs> {
    const [mapBytes, model, original] = await Promise.all([
      this.readMap(row),
      this.db.models.findById(row.modelId),
      this.readOriginal(row),
    ]);
    if (!model?.mapStats) throw notFound('Model', row.modelId);
    const map = decodeMapObject(mapBytes);
    const pngs = renderInspectionPngs({
      anomalyMap: map.map,
      mapWidth: map.width,
      mapHeight: map.height,
      threshold: row.threshold,
      mapStats: model.mapStats,
      original,
      width: row.width,
      height: row.height,
    });
    const [heatmap, mask, overlay] = await Promise.all([pngs.heatmap, pngs.mask, pngs.overlay]);
    return overlay ? { heatmap, mask, overlay } : { heatmap, mask };
  }

  /** The exact map: in the row until it moved to S3 (AnomalyMapMover). */
  private async readMap(row: InspectionEntity): Promise<Buffer> {
    if (row.mapObjectKey) return this.objectStore.get(row.mapObjectKey);
    const pending = await this.db.inspections.pendingMap(row.id);
    if (pending) return pending;
    // Moved since the row was read.
    const moved = (await this.db.inspections.findById(row.id))?.mapObjectKey;
    if (!moved) throw notFound('Anomaly map of inspection', row.id);
    return this.objectStore.get(moved);
  }

  /** The inspected image, decoded; null when it is gone (a dataset image deleted since). */
  private async readOriginal(row: InspectionEntity): Promise<RgbImage | null> {
    let bytes: Buffer | null = null;
    if (row.inputObjectKey) bytes = await this.objectStore.find(row.inputObjectKey);
    else if (row.imageId) {
      const key = (await this.db.images.findById(row.imageId))?.objectKey;
      if (key) bytes = await this.datasetImages.get(key).catch(() => null);
    }
    return bytes ? this.preprocessing.decodeRgb(bytes, this.settings.imageMaxPixels) : null;
  }

  /** Best effort: a PNG not stored is drawn again on its next request. */
  private async store(row: InspectionEntity, pngs: RenderedPngs): Promise<void> {
    await Promise.all(
      Object.entries(pngs).map(async ([kind, png]) => {
        try {
          await this.objectStore.put(objectKeyOf(row, kind as InspectionImageKind), png, 'image/png');
        } catch (error) {
          this.logger.warn({ err: error, inspectionId: row.id, kind }, 'could not store a drawn inspection image');
        }
      }),
    );
  }
}

function objectKeyOf(row: InspectionEntity, kind: InspectionImageKind): string {
  if (kind === 'heatmap') return row.heatmapObjectKey;
  return kind === 'overlay' ? row.overlayObjectKey : row.maskObjectKey;
}

function pick(pngs: RenderedPngs, kind: InspectionImageKind): Buffer {
  const png = pngs[kind];
  if (!png)
    throw new AppError(
      ErrorCode.INPUT_IMAGE_GONE,
      'the inspected image was deleted before this overlay was first drawn; the heatmap and mask remain',
    );
  return png;
}
