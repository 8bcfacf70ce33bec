/** A Vega-Lite spec rendered to SVG text in Node by Vega (no browser, no canvas): the pictures' one renderer. */
import { compile, type TopLevelSpec } from 'vega-lite'
import { parse, View } from 'vega'

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}
