// The publishable packages (in dependency order) and the pnpm the scripts fetch when none is
// installed: one list for scripts/pack.mjs and scripts/pack-check.mjs.
export const PUBLISHED = ['core', 'authority', 'langchain', 'mcp', 'ai-sdk', 'openai-agents', 'redis', 'postgres', 'cli']
export const PNPM = 'pnpm@12.21.0'
