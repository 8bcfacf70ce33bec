/**
 * One vote as it travels through the Redis queue from the vote program to the worker: a JSON
 * object with the vote's id (given by the vote program), the voter, the choice and when it was
 * accepted (ms since the epoch). The worker refuses items that are not such a vote.
 */

export interface Vote {
  id: string
  voter: string
  choice: 'a' | 'b'
  at: number
}

export function encodeVote(vote: Vote): string {
  return JSON.stringify({ id: vote.id, voter: vote.voter, choice: vote.choice, at: vote.at })
}

/** The vote in a queue item, or undefined when the item is not a vote. */
export function decodeVote(item: string): Vote | undefined {
  let data: unknown
  try {
    data = JSON.parse(item)
  } catch {
    return undefined
  }
  if (typeof data !== 'object' || data === null) return undefined
  const { id, voter, choice, at } = data as Record<string, unknown>
  if (typeof id !== 'string' || id === '' || typeof voter !== 'string' || voter === '') return undefined
  if ((choice !== 'a' && choice !== 'b') || typeof at !== 'number') return undefined
  return { id, voter, choice, at }
}
