import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Role } from '../auth/principal';
import { Connection } from './connection.types';

registerEnumType(Role, {
  name: 'Role',
  description: 'VIEWER reads; LABELER also uploads and imports data; ADMIN may do everything (models, keys, deletes)',
});

@ObjectType()
export class ApiKey {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => Role)
  role!: Role;

  @Field({ description: 'First characters of the secret, to tell keys apart' })
  secretPrefix!: string;

  @Field()
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  revokedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  lastUsedAt!: Date | null;
}

@ObjectType({ description: 'A new API key; `secret` is shown this once and never again' })
export class CreatedApiKey {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => Role)
  role!: Role;

  @Field()
  secret!: string;
}

@ObjectType()
export class ApiKeyConnection extends Connection('ApiKey', ApiKey) {}

export enum ApiKeyEventKind {
  CREATED = 'CREATED',
  REVOKED = 'REVOKED',
}
registerEnumType(ApiKeyEventKind, { name: 'ApiKeyEventKind' });

@ObjectType()
export class ApiKeyEvent {
  @Field(() => ApiKeyEventKind)
  kind!: ApiKeyEventKind;

  @Field(() => ApiKey)
  apiKey!: ApiKey;
}

@ObjectType({ description: 'The caller, as identified by its API key' })
export class Viewer {
  @Field(() => ID)
  apiKeyId!: string;

  @Field()
  name!: string;

  @Field(() => Role)
  role!: Role;
}
