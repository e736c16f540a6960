import { Field, Float, ObjectType } from 'type-graphql';

@ObjectType()
export class Health {
  @Field({ description: '"ok" while the process serves requests' })
  status!: string;

  @Field({ description: 'Service version (package.json)' })
  version!: string;

  @Field(() => Float)
  uptimeSeconds!: number;
}
