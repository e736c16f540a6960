import { z } from 'zod';
import { InvalidModelError } from './errors';
import { OnnxParseError, readOnnxModelHeader, type OnnxGraphContents, type OnnxModelHeader } from './onnx-proto';
import { CONTRACT_FORMAT_VERSION, CONTRACT_OPSET, signatureProblems, type SessionSignature } from './model-signature';

export {
  CONTRACT_ANOMALY_MAP_OUTPUT,
  CONTRACT_FORMAT_VERSION,
  CONTRACT_INPUT,
  CONTRACT_OPSET,
  CONTRACT_SCORE_OUTPUT,
  signatureProblems,
  type SessionSignature,
  type ValueSignature,
} from './model-signature';

/** Image-score statistics on held-out normal images. */
export interface ScoreStats {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** Anomaly-map pixel statistics on held-out normal images (they scale the heatmap colours). */
export interface MapStats {
  readonly min: number;
  readonly max: number;
  readonly p99: number;
}

export type RgbTriple = readonly [red: number, green: number, blue: number];

/** The typed `metadata_props` of a contract model (docs/model-contract.md). */
export interface ModelMetadata {
  readonly formatVersion: string;
  readonly architecture: Readonly<Record<string, unknown>>;
  /** [height, width] of the model input. */
  readonly inputSize: readonly [height: number, width: number];
  readonly mean: RgbTriple;
  readonly std: RgbTriple;
  readonly category: string;
  readonly maskRate: number;
  readonly trainingData: unknown;
  readonly scoreStats: ScoreStats;
  readonly mapStats: MapStats;
  readonly proposedThreshold: number;
  /** Every metadata_props entry as stored, including keys the contract does not name. */
  readonly props: Readonly<Record<string, string>>;
}

export const REQUIRED_METADATA_KEYS = [
  'format_version',
  'architecture',
  'input_size',
  'mean',
  'std',
  'category',
  'mask_rate',
  'training_data',
  'score_stats',
  'map_stats',
  'proposed_threshold',
] as const;

const finite = z.number().finite();
const rgb = z.tuple([finite, finite, finite]);
const scoreStatsSchema = z
  .object({
    count: z.number().int().nonnegative(),
    min: finite,
    max: finite,
    mean: finite,
    std: finite.nonnegative(),
    p50: finite,
    p95: finite,
    p99: finite,
  })
  .refine((stats) => stats.min <= stats.max, 'min must not exceed max');
const mapStatsSchema = z
  .object({ min: finite, max: finite, p99: finite })
  .refine((stats) => stats.min <= stats.max, 'min must not exceed max');

/** A JSON-valued key: parsed, then checked against its schema. */
function jsonValue<T>(
  props: Readonly<Record<string, string>>,
  key: string,
  schema: z.ZodType<T>,
  problems: string[],
): T | undefined {
  const text = props[key];
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    problems.push(`metadata "${key}" is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) =>
      issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
    );
    problems.push(`metadata "${key}" is invalid (${issues.join(', ')}): ${JSON.stringify(text.slice(0, 80))}`);
    return undefined;
  }
  return parsed.data;
}

function numberValue(props: Readonly<Record<string, string>>, key: string, problems: string[]): number | undefined {
  const text = props[key];
  if (text === undefined) return undefined;
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) {
    problems.push(`metadata "${key}" is not a finite number: ${JSON.stringify(text)}`);
    return undefined;
  }
  return value;
}

/**
 * Typed contract metadata from `metadata_props`, or every problem found (missing keys, bad
 * JSON, wrong shapes) as an {@link InvalidModelError}.
 */
export function parseModelMetadata(props: Readonly<Record<string, string>>): ModelMetadata {
  const problems: string[] = [];
  const missing = REQUIRED_METADATA_KEYS.filter((key) => props[key] === undefined);
  if (missing.length > 0) problems.push(`metadata keys missing: ${missing.join(', ')}`);

  const formatVersion = props.format_version;
  if (formatVersion !== undefined && formatVersion !== CONTRACT_FORMAT_VERSION) {
    problems.push(
      `metadata "format_version" is ${JSON.stringify(formatVersion)}, this service reads format ${CONTRACT_FORMAT_VERSION}`,
    );
  }
  const architecture = jsonValue(props, 'architecture', z.record(z.unknown()), problems);
  const inputSize = jsonValue(
    props,
    'input_size',
    z.tuple([z.number().int().positive(), z.number().int().positive()]),
    problems,
  );
  const mean = jsonValue(props, 'mean', rgb, problems);
  const std = jsonValue(props, 'std', z.tuple([finite.positive(), finite.positive(), finite.positive()]), problems);
  const category = props.category;
  if (category !== undefined && category.trim() === '') problems.push('metadata "category" is empty');
  const maskRate = numberValue(props, 'mask_rate', problems);
  if (maskRate !== undefined && (maskRate < 0 || maskRate > 1))
    problems.push(`metadata "mask_rate" is ${maskRate}, expected a value in [0, 1]`);
  const trainingData = jsonValue(props, 'training_data', z.unknown(), problems);
  const scoreStats = jsonValue(props, 'score_stats', scoreStatsSchema, problems);
  const mapStats = jsonValue(props, 'map_stats', mapStatsSchema, problems);
  const proposedThreshold = numberValue(props, 'proposed_threshold', problems);

  if (
    problems.length > 0 ||
    formatVersion === undefined ||
    architecture === undefined ||
    inputSize === undefined ||
    mean === undefined ||
    std === undefined ||
    category === undefined ||
    maskRate === undefined ||
    scoreStats === undefined ||
    mapStats === undefined ||
    proposedThreshold === undefined
  ) {
    throw new InvalidModelError(problems);
  }
  return {
    formatVersion,
    architecture,
    inputSize,
    mean,
    std,
    category,
    maskRate,
    trainingData,
    scoreStats,
    mapStats,
    proposedThreshold,
    props: { ...props },
  };
}

/** Throws {@link InvalidModelError} listing every way the session's signature departs from the contract. */
export function checkSignature(signature: SessionSignature, inputSize: readonly [height: number, width: number]): void {
  const problems = signatureProblems(signature, inputSize);
  if (problems.length > 0) throw new InvalidModelError(problems);
}

/**
 * Op domains a model may use: the ONNX standard operator sets ("" and "ai.onnx" are the
 * default one). Our exported models use only the default domain; vendor domains such as
 * com.microsoft hold operators that read files or load other models (e.g. EPContext).
 */
export const ALLOWED_OP_DOMAINS: readonly string[] = ['', 'ai.onnx', 'ai.onnx.ml'];

/** Examples listed per kind of problem; the rest are counted. */
const MAX_EXAMPLES = 5;

function listed(items: readonly string[], noun: string): string {
  const shown = items.slice(0, MAX_EXAMPLES).join('; ');
  return items.length > MAX_EXAMPLES ? `${shown}; and ${items.length - MAX_EXAMPLES} more ${noun}` : shown;
}

/**
 * Tensors whose data onnxruntime would read from another file (relative paths resolve against
 * the service's working directory): a model must carry all its weights itself.
 */
export function externalDataProblems(graph: OnnxGraphContents): string[] {
  if (graph.externalTensors.length === 0) return [];
  const tensors = graph.externalTensors.map(
    (tensor) =>
      `tensor ${JSON.stringify(tensor.name)} in ${tensor.scope}` +
      (tensor.location === null ? '' : ` (location ${JSON.stringify(tensor.location)})`),
  );
  return [`tensors keep their data in external files, models must be self-contained: ${listed(tensors, 'tensors')}`];
}

/** Nodes of an op domain outside {@link ALLOWED_OP_DOMAINS}, one problem per domain. */
export function opDomainProblems(graph: OnnxGraphContents): string[] {
  const byDomain = new Map<string, OnnxGraphContents['nodes'][number][]>();
  for (const node of graph.nodes) {
    if (ALLOWED_OP_DOMAINS.includes(node.domain)) continue;
    const nodes = byDomain.get(node.domain) ?? [];
    nodes.push(node);
    byDomain.set(node.domain, nodes);
  }
  const allowed = ALLOWED_OP_DOMAINS.map((domain) => JSON.stringify(domain)).join(', ');
  return [...byDomain].map(([domain, nodes]) => {
    const described = nodes.map((node) => `${node.opType} (node ${JSON.stringify(node.name)} in ${node.scope})`);
    return `op domain ${JSON.stringify(domain)} is not a standard ONNX domain (only ${allowed} are accepted): ${listed(described, 'nodes')}`;
  });
}

/**
 * Declared input sizes above `maxInputSize`: the metadata's input_size, and every spatial axis
 * (after batch and channels) of the graph's inputs that are not initializers.
 */
export function inputSizeProblems(
  graph: OnnxGraphContents,
  inputSize: readonly [height: number, width: number] | undefined,
  maxInputSize: number,
): string[] {
  const limit = `above the limit of ${maxInputSize} (MODEL_MAX_INPUT_SIZE)`;
  const problems: string[] = [];
  if (inputSize !== undefined && (inputSize[0] > maxInputSize || inputSize[1] > maxInputSize))
    problems.push(`metadata "input_size" is ${JSON.stringify(inputSize)}, ${limit}`);
  const initializers = new Set(graph.initializerNames);
  for (const input of graph.inputs) {
    if (input.dims === null || initializers.has(input.name)) continue;
    const dims = input.dims;
    const labelOf = (axis: number): string =>
      dims.length === 4 ? (axis === 2 ? 'height' : 'width') : `dimension ${axis}`;
    const oversized = dims
      .map((dim, axis) => ({ dim, axis }))
      .filter(({ dim, axis }) => axis >= 2 && typeof dim === 'number' && dim > maxInputSize)
      .map(({ dim, axis }) => `${labelOf(axis)} ${String(dim)}`);
    if (oversized.length > 0)
      problems.push(`input ${JSON.stringify(input.name)} declares ${oversized.join(' and ')}, ${limit}`);
  }
  return problems;
}

export interface ModelFileLimits {
  /** Largest input height or width a model may declare; no bound when absent. */
  readonly maxInputSize?: number;
}

export interface OnnxFileDescription {
  readonly header: OnnxModelHeader;
  readonly metadata: ModelMetadata;
}

/**
 * The checks that need no onnxruntime, so that it never reads a file that fails them: the
 * bytes are an ONNX ModelProto, self-contained (no external data), with only standard op
 * domains, the contract's opset and metadata, and input sizes within `limits`. Throws
 * {@link InvalidModelError} listing every problem.
 */
export function describeOnnxFile(bytes: Uint8Array, limits: ModelFileLimits = {}): OnnxFileDescription {
  let header: OnnxModelHeader;
  try {
    header = readOnnxModelHeader(bytes);
  } catch (error) {
    if (error instanceof OnnxParseError) throw new InvalidModelError([`not an ONNX model (${error.message})`]);
    throw error;
  }
  const problems: string[] = [...externalDataProblems(header.graph), ...opDomainProblems(header.graph)];
  const defaultOpset = header.opsetImports.find((opset) => opset.domain === '' || opset.domain === 'ai.onnx');
  if (defaultOpset === undefined) problems.push('the model imports no default-domain (ai.onnx) opset');
  else if (defaultOpset.version !== CONTRACT_OPSET)
    problems.push(`opset is ${defaultOpset.version}, the contract requires ${CONTRACT_OPSET}`);
  let metadata: ModelMetadata | undefined;
  try {
    metadata = parseModelMetadata(header.metadataProps);
  } catch (error) {
    if (!(error instanceof InvalidModelError)) throw error;
    problems.push(...error.problems);
  }
  if (limits.maxInputSize !== undefined)
    problems.push(...inputSizeProblems(header.graph, metadata?.inputSize, limits.maxInputSize));
  if (problems.length > 0 || metadata === undefined) throw new InvalidModelError(problems);
  return { header, metadata };
}
