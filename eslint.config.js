// ESLint (flat config): `npm run lint`, zero warnings, in CI (.ci/run).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/', '**/*.d.ts']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', AbortController: 'readonly', fetch: 'readonly', performance: 'readonly', structuredClone: 'readonly', queueMicrotask: 'readonly', URLSearchParams: 'readonly', AbortSignal: 'readonly', NodeJS: 'readonly'},
    },
    rules: {
      // Unused names are errors, except the `_name` convention for what must be destructured away.
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none'}],
      'max-len': ['error', {code: 200, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true}],
      eqeqeq: ['error', 'always', {null: 'ignore'}],
      'no-var': 'error',
      'no-empty': ['error', {allowEmptyCatch: true}],
      'prefer-const': 'error',
      // Defensive initial values (`let observed = 'no attempt'`) read better than the flow analysis wants.
      'no-useless-assignment': 'off',
      // Expected output is written with its spaces, as it is printed.
      'no-regex-spaces': 'off',
    },
  },
  {
    // Tests read JSON bodies and driver rows loosely.
    files: ['test/**'],
    rules: {'@typescript-eslint/no-explicit-any': 'off'},
  },
  {
    // An assertion on a promise that nobody awaits (`expect(p).rejects…`, `expect.poll`) never fails
    // its test: every promise of a test is awaited, or marked `void` when left to run on purpose.
    files: ['test/**/*.ts'],
    languageOptions: {parserOptions: {project: './test/tsconfig.json', tsconfigRootDir: import.meta.dirname}},
    rules: {'@typescript-eslint/no-floating-promises': 'error'},
  },
  {
    // Code that runs in the browser (the admin console build, its fixture) or with fetch's globals.
    files: ['scripts/kinto-admin/**', 'test/fixtures/admin-build/**', 'bench/**'],
    languageOptions: {globals: {document: 'readonly', window: 'readonly', localStorage: 'readonly', Headers: 'readonly'}},
  },
)
