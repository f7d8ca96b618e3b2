import { describe, expect, it } from 'vitest';
import { parsePattern, parseTopic } from '../../src/actors/bus/topics.js';
import { KeelError } from '../../src/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof KeelError ? e.code : 'not a KeelError';
  }
  return undefined;
}

describe('topics', () => {
  it.each([
    ['', 'empty'],
    ['a..b', 'empty token'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a.>.b', '> not last'],
    ['a.b*', 'wildcard inside a token'],
    ['a.>x', '> inside a token'],
  ])('rejects the pattern %j (%s) with INVALID_TOPIC', (pattern) => {
    expect(codeOf(() => parsePattern(pattern))).toBe('INVALID_TOPIC');
  });

  it.each([['a.*'], ['a.>'], ['*'], ['>']])('rejects %j as a publish topic', (topic) => {
    expect(codeOf(() => parseTopic(topic))).toBe('INVALID_TOPIC');
  });

  it('accepts a topic without wildcards for publish', () => {
    expect(parseTopic('a.b.c')).toEqual(['a', 'b', 'c']);
  });

  it('rejects a topic that is not a string and names what it got', () => {
    expect(() => parseTopic(42)).toThrow(/must be a string, got number/);
    expect(codeOf(() => parsePattern(undefined))).toBe('INVALID_TOPIC');
  });

  it('names the offending topic in the message', () => {
    expect(() => parsePattern('order..placed')).toThrow(/order\.\.placed/);
  });

  it('accepts wildcards as whole tokens', () => {
    expect(parsePattern('order.*.created')).toEqual(['order', '*', 'created']);
    expect(parsePattern('order.>')).toEqual(['order', '>']);
  });
});
