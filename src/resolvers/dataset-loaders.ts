import DataLoader from 'dataloader';
import type { EntityLoaders } from '../db/entity-loaders';
import type { CategoryEntity } from '../db/entities/category.entity';
import type { SnapshotEntity } from '../db/entities/snapshot.entity';
import type { RequestContext } from '../graphql/context';
import type { CategoryService } from '../services/category.service';
import type { CategoryImageStats, ImageService } from '../services/image.service';
import type { SnapshotService } from '../services/snapshot.service';

/**
 * Per-request batch loaders of the dataset domain, kept beside the request's EntityLoaders
 * (same lifetime): each runs one query for all the parents a response shows.
 */
class DatasetLoaders {
  readonly categoryStats: DataLoader<string, CategoryImageStats>;
  readonly categoriesByDataset: DataLoader<string, CategoryEntity[]>;
  readonly snapshotsByCategory: DataLoader<string, SnapshotEntity[]>;

  constructor(services: DatasetLoaderServices) {
    this.categoryStats = new DataLoader(async (ids) => {
      const stats = await services.images.statsByCategory(ids);
      return ids.map((id) => stats.get(id) ?? { counts: [] });
    });
    this.categoriesByDataset = new DataLoader(async (ids) => {
      const categories = await services.categories.listByDatasets(ids);
      return ids.map((id) => categories.filter((category) => category.datasetId === id));
    });
    this.snapshotsByCategory = new DataLoader(async (ids) => {
      const snapshots = await services.snapshots.listByCategories(ids);
      return ids.map((id) => snapshots.filter((snapshot) => snapshot.categoryId === id));
    });
  }
}

export interface DatasetLoaderServices {
  images: ImageService;
  categories: CategoryService;
  snapshots: SnapshotService;
}

const perRequest = new WeakMap<EntityLoaders, DatasetLoaders>();

export function datasetLoaders(context: RequestContext, services: DatasetLoaderServices): DatasetLoaders {
  let loaders = perRequest.get(context.loaders);
  if (!loaders) {
    loaders = new DatasetLoaders(services);
    perRequest.set(context.loaders, loaders);
  }
  return loaders;
}
