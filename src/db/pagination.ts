import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { badInput } from '../errors';

export interface PageRequest {
  first?: number | null;
  after?: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface Page<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  /** A getter: counted only when a client selects the field. */
  readonly totalCount: Promise<number>;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

type CursorValue = string | number;

/**
 * Keyset ordering: a column that the list is sorted by, plus the id as tie-breaker.
 * Timestamp columns are stored with millisecond precision (timestamptz(3)), so the
 * value a cursor carries round-trips exactly through a JavaScript Date.
 */
export interface KeysetOrder<T> {
  /** SQL expression of the sort column, e.g. `image.created_at`. */
  column: string;
  /** SQL expression of the unique tie-breaker, e.g. `image.id`. */
  idColumn: string;
  direction: 'ASC' | 'DESC';
  valueOf: (node: T) => Date | number | string;
  idOf: (node: T) => string;
}

function encodeCursor(value: Date | number | string, id: string): string {
  const encoded: [CursorValue, string, 'd' | 'v'] =
    value instanceof Date ? [value.toISOString(), id, 'd'] : [value, id, 'v'];
  return Buffer.from(JSON.stringify(encoded)).toString('base64url');
}

function decodeCursor(cursor: string): { value: Date | CursorValue; id: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(decoded) &&
      decoded.length === 3 &&
      typeof decoded[1] === 'string' &&
      (typeof decoded[0] === 'string' || typeof decoded[0] === 'number')
    ) {
      const [value, id, kind] = decoded as [CursorValue, string, string];
      if (kind === 'd') {
        const date = new Date(String(value));
        if (!Number.isNaN(date.getTime())) return { value: date, id };
      } else if (kind === 'v') {
        return { value, id };
      }
    }
  } catch {
    // fall through to the error below
  }
  throw badInput(`"after" is not a cursor this list gave out`, { argument: 'after' });
}

export function pageSize(first: number | null | undefined): number {
  const size = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw badInput(`"first" must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  return size;
}

/** Runs a Relay-style page of `query` (filters already applied) in keyset order. */
export async function paginate<T extends ObjectLiteral>(
  query: SelectQueryBuilder<T>,
  order: KeysetOrder<T>,
  request: PageRequest,
): Promise<Page<T>> {
  const size = pageSize(request.first);
  const countQuery = query.clone();
  const page = query.clone();
  if (request.after) {
    const cursor = decodeCursor(request.after);
    const comparison = order.direction === 'DESC' ? '<' : '>';
    page.andWhere(`(${order.column}, ${order.idColumn}) ${comparison} (:cursorValue, :cursorId)`, {
      cursorValue: cursor.value,
      cursorId: cursor.id,
    });
  }
  const rows = await page
    .orderBy(order.column, order.direction)
    .addOrderBy(order.idColumn, order.direction)
    .take(size + 1)
    .getMany();
  const hasNextPage = rows.length > size;
  const edges = rows
    .slice(0, size)
    .map((node) => ({ cursor: encodeCursor(order.valueOf(node), order.idOf(node)), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage,
      hasPreviousPage: Boolean(request.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
    get totalCount() {
      return countQuery.getCount();
    },
  };
}

/** Keyset order by creation time, newest first: the default for every list. */
export function newestFirst<T extends { id: string; createdAt: Date }>(alias: string): KeysetOrder<T> {
  return {
    column: `${alias}.createdAt`,
    idColumn: `${alias}.id`,
    direction: 'DESC',
    valueOf: (node) => node.createdAt,
    idOf: (node) => node.id,
  };
}
