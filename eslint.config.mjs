// The rules cdk8s-plus enforces (its projen-generated ESLint configuration): layout, quotes,
// line length, import order and class member order are the linter's job, not review's.
import stylistic from '@stylistic/eslint-plugin';
import importPlugin from 'eslint-plugin-import';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tmp/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.d.ts'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, '@stylistic': stylistic, 'import': importPlugin },
    settings: {
      'import/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import/resolver': { node: { extensions: ['.ts', '.js'] } },
    },
    rules: {
      '@stylistic/indent': ['error', 2],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true }],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/comma-spacing': ['error', { before: false, after: true }],
      '@stylistic/no-multi-spaces': ['error', { ignoreEOLComments: false }],
      '@stylistic/array-bracket-spacing': ['error', 'never'],
      '@stylistic/array-bracket-newline': ['error', 'consistent'],
      '@stylistic/object-curly-spacing': ['error', 'always'],
      '@stylistic/object-curly-newline': ['error', { multiline: true, consistent: true }],
      '@stylistic/keyword-spacing': ['error'],
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/space-before-blocks': ['error'],
      '@stylistic/member-delimiter-style': ['error'],
      '@stylistic/semi': ['error', 'always'],
      '@stylistic/max-len': ['error', {
        code: 150, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreComments: true, ignoreRegExpLiterals: true,
      }],
      '@stylistic/quote-props': ['error', 'consistent-as-needed'],
      '@stylistic/key-spacing': ['error'],
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1 }],
      '@stylistic/no-trailing-spaces': ['error'],
      'curly': ['error', 'multi-line', 'consistent'],
      'dot-notation': ['error'],
      'no-bitwise': ['error'],
      'no-duplicate-imports': ['error'],
      'no-shadow': ['off'],
      '@typescript-eslint/no-shadow': ['error'],
      '@typescript-eslint/no-require-imports': ['error'],
      '@typescript-eslint/no-floating-promises': ['error'],
      'no-return-await': ['off'],
      '@typescript-eslint/return-await': ['error'],
      'import/no-duplicates': ['error'],
      'import/order': ['error', {
        groups: ['builtin', 'external'],
        alphabetize: { order: 'asc', caseInsensitive: true },
      }],
      '@typescript-eslint/member-ordering': ['error', {
        default: [
          'public-static-field', 'public-static-method', 'protected-static-field', 'protected-static-method',
          'private-static-field', 'private-static-method', 'field', 'constructor', 'method',
        ],
      }],
    },
  },
  {
    // The library's own rules: short functions, and its runtime imports only what it ships with.
    files: ['lib/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
      'import/no-extraneous-dependencies': ['error', { devDependencies: false, optionalDependencies: false, peerDependencies: true }],
      'no-restricted-imports': ['error', { paths: [{ name: 'cdk8s-plus-27', message: 'import { k8s } from lib/core/kube.ts, the one place that names the Kubernetes API release' }] }],
    },
  },
  { files: ['lib/core/kube.ts'], rules: { 'no-restricted-imports': 'off' } },
);
