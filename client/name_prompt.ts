/**
 * Whether a line from a server that is not confab asks for a name.
 *
 * @module
 */

/** Longest line taken for a name prompt; anything longer is chat. */
export const NAME_PROMPT_CHARS = 200;

/**
 * A trimmed line that asks for a name: `alias?`, `[ENTER YOUR NAME]:`,
 * `Nickname:`, `Please choose a nick:`, possibly after a sentence of welcome.
 * Each run of spaces has one place to go, so matching stays linear.
 */
const NAME_PROMPT_RE =
  /^(?:.*[.!] )?[[(<>*-]*(?: (?=\S))?(?:please )?(?:(?:enter|choose|pick|type|give|set) |what(?:'s| is) )?(?:your |an? )?(?:alias|(?:nick|user ?)?name|nick|handle)(?: (?=[\])>*-]))?[\])>*-]*(?: (?=[?:]))?[?:]$/i;

/**
 * Whether `line` asks for a name. The whole line must be the question, so a
 * chat line that mentions names is not one; a line over
 * {@linkcode NAME_PROMPT_CHARS} characters never is.
 *
 * @example Usage
 * ```ts
 * import { isNamePrompt } from "./name_prompt.ts";
 * console.assert(isNamePrompt("Welcome! [ENTER YOUR NAME]: "));
 * console.assert(!isNamePrompt("bob: what is your name?  mine is Bob"));
 * ```
 */
export function isNamePrompt(line: string): boolean {
  if (line.length > NAME_PROMPT_CHARS) return false;
  // One space stands for any run of white space.
  return NAME_PROMPT_RE.test(line.replace(/\s+/g, " ").trim());
}
