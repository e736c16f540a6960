import type { CategoryImagesListQuery } from '../../gql/graphql';

type Image = CategoryImagesListQuery['images']['edges'][number]['node'];

/**
 * One image: its thumbnail (the presigned URL; the browser scales it), and for a defective image
 * its ground-truth mask tinted red over it while the pointer is on the tile. Click opens the full
 * image.
 */
export function ImageTile({ image }: { image: Image }) {
  return (
    <figure
      className="category-images-tile"
      data-testid="image-tile"
      data-image-id={image.id}
      data-defect-type={image.defectType ?? ''}
    >
      <a
        className="category-images-frame"
        href={image.url}
        target="_blank"
        rel="noreferrer"
        title={`${image.originalFilename} (${image.width}×${image.height}); opens the full image`}
      >
        <span
          className={`category-images-picture ${image.width >= image.height ? 'landscape' : 'portrait'}`}
          style={{ aspectRatio: `${image.width} / ${image.height}` }}
        >
          <img src={image.url} alt={image.originalFilename} loading="lazy" data-testid="image-thumbnail" />
          {image.maskUrl && (
            <span className="category-images-mask" data-testid="image-mask">
              <img src={image.maskUrl} alt={`Defect mask of ${image.originalFilename}`} loading="lazy" />
            </span>
          )}
        </span>
      </a>
      <figcaption>
        <span className="category-images-filename" title={image.originalFilename}>
          {image.originalFilename}
        </span>
        <span className="category-images-tags">
          <span className="badge">{image.split === 'TRAIN' ? 'train' : 'test'}</span>
          {image.defectType ? (
            <span className="badge anomalous" data-testid="image-defect-type">
              {image.defectType}
            </span>
          ) : (
            <span className="badge normal">good</span>
          )}
        </span>
      </figcaption>
    </figure>
  );
}
