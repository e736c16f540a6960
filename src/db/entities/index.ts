import { ApiKeyEntity } from './api-key.entity';
import { CategoryEntity } from './category.entity';
import { DatasetEntity } from './dataset.entity';
import { EvaluationImageResultEntity } from './evaluation-image-result.entity';
import { EvaluationEntity } from './evaluation.entity';
import { ImageUploadEntity } from './image-upload.entity';
import { ImageEntity } from './image.entity';
import { ImportJobEntity } from './import-job.entity';
import { InspectionEntity, InspectionUploadEntity } from './inspection.entity';
import { ModelUploadEntity, ModelVersionEntity } from './model-version.entity';
import { SeedMarkerEntity } from './seed-marker.entity';
import { SnapshotEntity, SnapshotImageEntity } from './snapshot.entity';

/** Every entity TypeORM knows; each domain adds its own here. */
export const entities = [
  ApiKeyEntity,
  DatasetEntity,
  CategoryEntity,
  ImageEntity,
  SnapshotEntity,
  SnapshotImageEntity,
  ImageUploadEntity,
  ImportJobEntity,
  ModelVersionEntity,
  ModelUploadEntity,
  InspectionEntity,
  InspectionUploadEntity,
  SeedMarkerEntity,
  EvaluationEntity,
  EvaluationImageResultEntity,
];
