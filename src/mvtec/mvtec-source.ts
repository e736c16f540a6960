/** Where an MVTec-layout import reads from: a folder on the server, or a prefix in our bucket. */
import type { Dirent } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../errors';
import type { ObjectStore } from '../storage/object-store';
import { objectKeys } from '../storage/object-keys';

export interface MvtecSource {
  /** Folder names at the top of the source (candidate categories). */
  listCategories(): Promise<string[]>;
  /** Every file below `<category>/`, relative to it and '/'-separated; null if there is no such folder. */
  listFiles(category: string): Promise<string[] | null>;
  /** Bytes of `<category>/<relativePath>`; a file above `maxBytes` is refused without being read whole. */
  read(category: string, relativePath: string, maxBytes: number): Promise<Buffer>;
  /** Stores the file under `key` in our bucket: a server-side copy for S3 sources, an upload otherwise. */
  store(
    category: string,
    relativePath: string,
    bytes: Buffer,
    key: string,
    contentType: string,
    objectStore: ObjectStore,
  ): Promise<void>;
}

/** A file or folder of the source that may not be read (outside the roots, gone). */
export class SourceFileError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function tooLarge(maxBytes: number): SourceFileError {
  return new SourceFileError(ErrorCode.IMAGE_TOO_LARGE, `the file is larger than the ${maxBytes} bytes accepted`);
}

function isWithin(candidate: string, root: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Resolves a `localPath` import source: it must lie below one of the IMPORT_ROOTS, both as
 * written and after resolving symbolic links, so neither `..` nor a link leads out.
 */
export async function resolveLocalSource(localPath: string, importRoots: readonly string[]): Promise<string> {
  if (importRoots.length === 0)
    throw new AppError(
      ErrorCode.FORBIDDEN,
      'imports from local paths are disabled on this server (IMPORT_ROOTS is empty); use s3Prefix',
    );
  if (!path.isAbsolute(localPath))
    throw new AppError(ErrorCode.BAD_USER_INPUT, 'localPath must be an absolute path', {
      argument: 'source.localPath',
    });
  const requested = path.resolve(localPath);
  const outside = (): AppError =>
    new AppError(
      ErrorCode.FORBIDDEN,
      'localPath is not below any of the directories this server imports from (IMPORT_ROOTS)',
      { argument: 'source.localPath' },
    );
  if (!importRoots.some((root) => isWithin(requested, root))) throw outside();
  let real: string;
  try {
    real = await realpath(requested);
  } catch {
    throw new AppError(ErrorCode.SOURCE_NOT_FOUND, `there is no folder ${requested}`, { argument: 'source.localPath' });
  }
  const realRoots = await Promise.all(importRoots.map((root) => realpath(root).catch(() => null)));
  if (!realRoots.some((root) => root !== null && isWithin(real, root))) throw outside();
  if (!(await stat(real)).isDirectory())
    throw new AppError(ErrorCode.SOURCE_NOT_FOUND, `${requested} is not a folder`, { argument: 'source.localPath' });
  return real;
}

/**
 * Every key space the service writes (uploads/, images/, masks/, models/, inspections/,
 * evaluations/...: the `...Prefix` strings of objectKeys), none of which is an import source.
 */
const SERVICE_PREFIXES: readonly string[] = Object.values(objectKeys).filter(
  (value): value is string => typeof value === 'string',
);

function isServiceKey(key: string): boolean {
  return SERVICE_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/** A plain relative prefix in our bucket, returned with one trailing '/'. */
export function checkS3Prefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  const segments = trimmed.split('/');
  if (
    trimmed.length === 0 ||
    trimmed.length > 512 ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..' || /[\p{Cc}\\]/u.test(segment))
  ) {
    throw new AppError(
      ErrorCode.BAD_USER_INPUT,
      's3Prefix must be a plain relative prefix such as "incoming/mvtec" (no leading "/", no "." or ".." segments)',
      { argument: 'source.s3Prefix' },
    );
  }
  const normalized = `${trimmed}/`;
  // Each of them is a top-level folder, so only the whole bucket could contain one, and "" is refused above.
  if (isServiceKey(normalized)) {
    throw new AppError(
      ErrorCode.FORBIDDEN,
      `the service's own ${normalized.split('/')[0]}/ objects cannot be imported`,
      { argument: 'source.s3Prefix' },
    );
  }
  return normalized;
}

export class LocalMvtecSource implements MvtecSource {
  /** `root` is a resolved real path, checked against IMPORT_ROOTS. */
  constructor(private readonly root: string) {}

  /** A path of the source as real path, refused if a link leads outside the source. */
  private async resolveInside(relativePath: string): Promise<string> {
    const real = await realpath(path.join(this.root, relativePath)).catch(() => {
      throw new SourceFileError(ErrorCode.SOURCE_NOT_FOUND, 'the file is gone');
    });
    if (!isWithin(real, this.root))
      throw new SourceFileError(ErrorCode.FORBIDDEN, 'a symbolic link leads outside the import folder');
    return real;
  }

  async listCategories(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true });
    const folders: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory() || (entry.isSymbolicLink() && (await this.isFolderInside(entry.name))))
        folders.push(entry.name);
    }
    return folders.sort();
  }

  private async isFolderInside(relativePath: string): Promise<boolean> {
    try {
      return (await stat(await this.resolveInside(relativePath))).isDirectory();
    } catch {
      return false;
    }
  }

  async listFiles(category: string): Promise<string[] | null> {
    if (!(await this.isFolderInside(category))) return null;
    const base = await this.resolveInside(category);
    const files: string[] = [];
    const walk = async (folder: string, prefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(folder, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
        // Linked folders are not descended into (no cycles); linked files are checked when read.
        if (entry.isDirectory()) await walk(path.join(folder, entry.name), relative);
        else if (entry.isFile() || entry.isSymbolicLink()) files.push(relative);
      }
    };
    await walk(base, '');
    return files;
  }

  async read(category: string, relativePath: string, maxBytes: number): Promise<Buffer> {
    const real = await this.resolveInside(path.join(category, relativePath));
    let bytes: Buffer;
    try {
      if ((await stat(real)).size > maxBytes) throw tooLarge(maxBytes);
      bytes = await readFile(real);
    } catch (error) {
      if (error instanceof SourceFileError) throw error;
      throw new SourceFileError(ErrorCode.SOURCE_NOT_FOUND, 'the file cannot be read');
    }
    // It may have grown since the stat.
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    return bytes;
  }

  async store(
    _category: string,
    _relativePath: string,
    bytes: Buffer,
    key: string,
    contentType: string,
    objectStore: ObjectStore,
  ): Promise<void> {
    await objectStore.put(key, bytes, contentType);
  }
}

export class S3MvtecSource implements MvtecSource {
  /** `prefix` ends with '/' (see checkS3Prefix). */
  constructor(
    private readonly objectStore: ObjectStore,
    private readonly prefix: string,
  ) {}

  /** The keys below `prefix`, never one of the service's own (checkS3Prefix keeps sources out of them already). */
  private async *keys(prefix: string): AsyncGenerator<string> {
    for await (const object of this.objectStore.list(prefix)) if (!isServiceKey(object.key)) yield object.key;
  }

  async listCategories(): Promise<string[]> {
    const folders = new Set<string>();
    for await (const key of this.keys(this.prefix)) {
      const [first, ...rest] = key.slice(this.prefix.length).split('/');
      if (first && rest.length > 0 && !first.startsWith('.')) folders.add(first);
    }
    return [...folders].sort();
  }

  async listFiles(category: string): Promise<string[] | null> {
    const folder = `${this.prefix}${category}/`;
    const files: string[] = [];
    for await (const key of this.keys(folder)) {
      const relative = key.slice(folder.length);
      if (relative.length > 0 && !relative.endsWith('/')) files.push(relative);
    }
    return files.length > 0 ? files : null;
  }

  async read(category: string, relativePath: string, maxBytes: number): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await this.objectStore.getRange(`${this.prefix}${category}/${relativePath}`, maxBytes + 1);
    } catch (error) {
      // A missing object is this file's problem; anything else (S3 down) fails the job, which is retried.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) throw new SourceFileError(ErrorCode.SOURCE_NOT_FOUND, 'the object is gone');
      throw error;
    }
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    return bytes;
  }

  async store(
    category: string,
    relativePath: string,
    _bytes: Buffer,
    key: string,
    contentType: string,
    objectStore: ObjectStore,
  ): Promise<void> {
    await objectStore.copy(`${this.prefix}${category}/${relativePath}`, key, contentType);
  }
}
