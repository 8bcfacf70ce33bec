/**
 * --step: before each task the operator answers "Perform task NAME? (y)es/(n)o/(c)ontinue".
 * One question per task for all hosts (the first host to reach it asks, the others
 * share the answer), questions never overlap, and after "continue" nothing more is asked.
 * The input stream is injectable (tests); end of input answers "no" to everything left.
 */
import { createInterface, type Interface } from 'node:readline'
import type { Readable } from 'node:stream'

/** Invalid answers accepted before the task is skipped. */
const MAX_ATTEMPTS = 5

export class StepPrompter {
  private readonly lines: string[] = []
  private waiter?: (line: string | undefined) => void
  private ended = false
  private continued = false
  private readonly answers = new Map<string, Promise<boolean>>()
  private queue: Promise<unknown> = Promise.resolve()
  private readonly reader: Interface

  constructor(
    input: Readable,
    private readonly write: (text: string) => void,
  ) {
    this.reader = createInterface({ input, terminal: false })
    this.reader.on('line', (line) => {
      if (this.waiter) this.takeWaiter()(line)
      else this.lines.push(line)
    })
    this.reader.on('close', () => {
      this.ended = true
      if (this.waiter) this.takeWaiter()(undefined)
    })
  }

  private takeWaiter(): (line: string | undefined) => void {
    const waiter = this.waiter!
    this.waiter = undefined
    return waiter
  }

  private nextLine(): Promise<string | undefined> {
    if (this.lines.length) return Promise.resolve(this.lines.shift())
    if (this.ended) return Promise.resolve(undefined)
    return new Promise((resolve) => (this.waiter = resolve))
  }

  /** Whether to perform the task; `key` tells apart tasks of one name in different plays. */
  perform(key: string, task: string): Promise<boolean> {
    let answer = this.answers.get(key)
    if (!answer) {
      answer = this.queue.then(() => this.ask(task))
      this.queue = answer
      this.answers.set(key, answer)
    }
    return answer
  }

  private async ask(task: string): Promise<boolean> {
    if (this.continued) return true
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      this.write(`Perform task ${task}? (y)es/(n)o/(c)ontinue: `)
      const line = await this.nextLine()
      if (line === undefined) {
        this.write('\n(end of input: the remaining tasks are skipped)\n')
        return false
      }
      const reply = line.trim().toLowerCase()
      if (reply === 'y' || reply === 'yes') return true
      if (reply === 'n' || reply === 'no') return false
      if (reply === 'c' || reply === 'continue') return (this.continued = true)
    }
    this.write(`(no valid answer after ${MAX_ATTEMPTS} tries: task skipped)\n`)
    return false
  }

  /** Stop reading: pending and later questions are answered "no". */
  close(): void {
    this.reader.close()
  }
}
