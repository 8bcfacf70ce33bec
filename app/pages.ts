/**
 * The two small pages of the vote app, as static HTML with inline script (no assets to serve).
 * Vote page: buttons `#vote-a` / `#vote-b` POST /vote with this browser's voter id (kept in
 * localStorage) and show the answer in `#answer`. Result page: `#a`, `#b`, `#total` from
 * GET /results, refreshed every second, with errors in `#status`.
 */

const STYLE = `
  body { font-family: sans-serif; max-width: 32rem; margin: 3rem auto; text-align: center; }
  button { font-size: 1.5rem; padding: 1rem 2.5rem; margin: 1rem; cursor: pointer; }
  .count { font-size: 2.5rem; font-weight: bold; }
  #answer, #status { min-height: 1.5rem; color: #555; }
`

function page(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title><style>${STYLE}</style></head>
<body>
${body}
<script>
${script}
</script>
</body>
</html>
`
}

export function votePage(): string {
  return page(
    'hastack vote',
    `<h1>Cats or dogs?</h1>
<button id="vote-a" data-choice="a">A: cats</button>
<button id="vote-b" data-choice="b">B: dogs</button>
<p id="answer"></p>
<p><small>voter <code id="voter"></code></small></p>`,
    `const key = 'hastack-voter'
let voter = localStorage.getItem(key)
// crypto.randomUUID exists only in secure contexts (HTTPS, localhost): this page is served over plain HTTP.
const randomHex = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
if (!voter) { voter = 'web-' + randomHex(); localStorage.setItem(key, voter) }
document.getElementById('voter').textContent = voter
const answer = document.getElementById('answer')
for (const button of document.querySelectorAll('button[data-choice]')) {
  button.addEventListener('click', async () => {
    answer.textContent = 'sending...'
    try {
      const r = await fetch('/vote', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ voter, choice: button.dataset.choice }),
      })
      const body = await r.json()
      answer.textContent = r.status === 201 ? 'Vote ' + button.dataset.choice.toUpperCase() + ' recorded (' + body.id + ')'
        : 'Not recorded: ' + (body.error || r.status)
    } catch (e) {
      answer.textContent = 'Not recorded: ' + e.message
    }
  })
}`,
  )
}

export function resultPage(): string {
  return page(
    'hastack results',
    `<h1>Results</h1>
<p>A: cats <span class="count" id="a">-</span></p>
<p>B: dogs <span class="count" id="b">-</span></p>
<p>votes <span id="total">-</span></p>
<p id="status"></p>`,
    `const status = document.getElementById('status')
async function refresh() {
  try {
    const r = await fetch('/results', { cache: 'no-store' })
    if (!r.ok) throw new Error('HTTP ' + r.status)
    const counts = await r.json()
    for (const k of ['a', 'b', 'total']) document.getElementById(k).textContent = counts[k]
    status.textContent = ''
  } catch (e) {
    status.textContent = 'results unavailable: ' + e.message
  }
}
refresh()
setInterval(refresh, 1000)`,
  )
}
