import { buildSchema, parse, validate } from 'graphql';
import { checkComplexity, limitRules, parseOperation } from '../../src/graphql/operation-limits';

const schema = buildSchema(`
  type Node { id: ID! child: Node }
  type NodeEdge { cursor: String! node: Node! }
  type NodeConnection { edges: [NodeEdge!]! totalCount: Int! }
  type Query { node: Node nodes(first: Int): NodeConnection! }
`);
const limits = { maxDepth: 3, maxComplexity: 100, maxAliases: 2, maxDirectives: 2, maxTokens: 40 };

describe('depth, alias, directive and token limits', () => {
  const refusals = (query: string) => validate(schema, parse(query), limitRules(limits)).map((e) => e.extensions.limit);

  test('accepts a query at the limit and refuses one deeper', () => {
    expect(refusals('{ node { child { id } } }')).toEqual([]);
    expect(refusals('{ node { child { child { id } } } }')).toEqual(['depth']);
  });

  test('refuses more aliases or directives than allowed', () => {
    expect(refusals('{ a: node { id } b: node { id } }')).toEqual([]);
    expect(refusals('{ a: node { id } b: node { id } c: node { id } }')).toEqual(['aliases']);
    expect(refusals('{ node @include(if: true) @skip(if: false) { id } }')).toEqual([]);
    expect(refusals('{ node @include(if: true) @skip(if: false) { id @include(if: true) } }')).toEqual(['directives']);
  });

  test('stops parsing past the token limit', () => {
    expect(() => parseOperation('{ node { id } }', limits)).not.toThrow();
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: node { id }`).join(' ');
    expect(() => parseOperation(`{ ${aliases} }`, limits)).toThrow(/contains more tha[nt] 40 tokens/);
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
