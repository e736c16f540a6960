import { buildSchema, parse, validate } from 'graphql';
import { checkComplexity, depthLimitRule } from '../../src/graphql/operation-limits';

const schema = buildSchema(`
  type Node { id: ID! child: Node }
  type NodeEdge { cursor: String! node: Node! }
  type NodeConnection { edges: [NodeEdge!]! totalCount: Int! }
  type Query { node: Node nodes(first: Int): NodeConnection! }
`);
const limits = { maxDepth: 3, maxComplexity: 100 };

describe('depth limit', () => {
  test('accepts a query at the limit and refuses one deeper', () => {
    expect(validate(schema, parse('{ node { child { child { id } } } }'), [depthLimitRule(limits)])).toHaveLength(0);
    const errors = validate(schema, parse('{ node { child { child { child { id } } } } }'), [depthLimitRule(limits)]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/exceeds maximum operation depth of 3/);
  });
});

describe('complexity', () => {
  test('a connection costs its page size times the cost of a node', () => {
    expect(() =>
      checkComplexity(schema, parse('{ nodes(first: 10) { edges { node { id } } } }'), undefined, undefined, limits),
    ).not.toThrow();
    expect(() =>
      checkComplexity(
        schema,
        parse('{ nodes(first: 50) { edges { node { id child { id } } } } }'),
        undefined,
        undefined,
        limits,
      ),
    ).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) }));
  });

  test('the page size can come from a variable', () => {
    const document = parse('query($n: Int) { nodes(first: $n) { edges { node { id child { id } } } } }');
    expect(() => checkComplexity(schema, document, { n: 5 }, undefined, limits)).not.toThrow();
    expect(() => checkComplexity(schema, document, { n: 90 }, undefined, limits)).toThrow(/too complex/);
  });

  test('a variable of the wrong type is BAD_USER_INPUT', () => {
    const document = parse('query($n: Int) { nodes(first: $n) { totalCount } }');
    expect(() => checkComplexity(schema, document, { n: 'many' }, undefined, limits)).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    );
  });
});
