// ESLint for hastack: typescript-eslint's recommended rules over every TypeScript file, with the
// few exceptions this codebase chooses on purpose (explained beside each).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', '.lab/', 'reports/', 'dashboards/', 'app/dist/', '.build/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // Roles are typed per role; a play holds roles of different variable types (Role<any>).
      '@typescript-eslint/no-explicit-any': 'off',
      // `_`-prefixed names mark deliberately unused parameters.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Teardown and probes swallow errors on purpose (`catch {}` with a comment where it matters).
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `cond && act()` and `c ? a() : b()` as statements are this codebase's terse style.
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
      // Control characters are what the value validators look for.
      'no-control-regex': 'off',
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true },
      ],
    },
  },
)
