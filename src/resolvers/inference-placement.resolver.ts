import { FieldResolver, Resolver, Root } from 'type-graphql';
import type { ModelVersionEntity } from '../db/entities/model-version.entity';
import type { InferenceEngine } from '../inference';
import { Health } from '../schema/health.types';
import { ModelVersion } from '../schema/model.types';

type Placement = Pick<InferenceEngine, 'options' | 'executionProviderOf'>;

/** Which execution providers this process's inference runs on (after INFERENCE_PROVIDER_FALLBACK). */
@Resolver(() => Health)
export class HealthInferenceResolver {
  constructor(private readonly engine: Placement) {}

  @FieldResolver(() => [String], {
    description:
      'Execution providers of the answering process, in order of preference (cpu, cuda, webgpu): the configured ones that work on its machine',
  })
  executionProviders(): string[] {
    return [...this.engine.options.executionProviders];
  }
}

@Resolver(() => ModelVersion)
export class ModelPlacementResolver {
  constructor(private readonly engine: Placement) {}

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'The execution provider this version runs on in the answering process (cpu, cuda, webgpu); null when it is not loaded there',
  })
  executionProvider(@Root() model: ModelVersionEntity): string | null {
    return this.engine.executionProviderOf(model.id);
  }
}
