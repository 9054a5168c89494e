// The 'e2e trixie' jest project's setup: its suites run Debian 13's daemons (see daemons.ts).
process.env.E2E_DAEMONS = 'trixie';
