import { KeelError } from '../../core/errors.js';

/** Splits and checks a topic a subscriber listens on: tokens, `*` for one token, `>` last for the rest. */
export function parsePattern(pattern: unknown): string[] {
  const tokens = splitTopic(pattern, 'subscribe');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (token === '>' && i !== tokens.length - 1) {
      throw new KeelError('INVALID_TOPIC', `invalid topic '${pattern}': '>' must be the last token`);
    }
    if (token.length > 1 && (token.includes('*') || token.includes('>'))) {
      throw new KeelError(
        'INVALID_TOPIC',
        `invalid topic '${pattern}': wildcards '*' and '>' must stand alone as a whole token, not in '${token}'`,
      );
    }
  }
  return tokens;
}

/** Splits and checks a topic an event is published on: no wildcards. */
export function parseTopic(topic: unknown): string[] {
  const tokens = splitTopic(topic, 'publish');
  for (const token of tokens) {
    if (token.includes('*') || token.includes('>')) {
      throw new KeelError(
        'INVALID_TOPIC',
        `invalid topic '${topic}': wildcards ('*', '>') are for subscribe, not publish`,
      );
    }
  }
  return tokens;
}

function splitTopic(topic: unknown, use: string): string[] {
  if (typeof topic !== 'string') {
    throw new KeelError('INVALID_TOPIC', `${use}: a topic must be a string, got ${typeof topic}`);
  }
  if (topic.length === 0) throw new KeelError('INVALID_TOPIC', `${use}: a topic must not be empty`);
  const tokens = topic.split('.');
  if (tokens.includes('')) {
    throw new KeelError('INVALID_TOPIC', `invalid topic '${topic}': empty token between dots`);
  }
  return tokens;
}
