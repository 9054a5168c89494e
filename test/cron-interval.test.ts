import { cronMaxIntervalSeconds } from '../lib/backup/cron-interval';

const HOUR = 3600;
const DAY = 24 * HOUR;

describe('cronMaxIntervalSeconds', () => {
  test.each([
    ['0 1 * * 0', 7 * DAY],
    ['0 1 * * 1-6', 2 * DAY],
    ['0 * * * *', HOUR],
    ['*/15 * * * *', 15 * 60],
    ['0 1,13 * * *', 12 * HOUR],
    ['0 0 1 * *', 31 * DAY],
    ['0 0 * * 7', 7 * DAY],
    ['0 0 * * sun', 7 * DAY],
    ['0 0 1 jan,jul *', 184 * DAY],
    // minutes 5, 25, 45 at 03 and 09 on weekdays: Friday 09:45 to Monday 03:05.
    ['5/20 3,9 * * mon-fri', 2 * DAY + 17 * HOUR + 20 * 60],
    // Both day fields restricted: either matches (the 1st, the 15th and every Monday).
    ['0 0 1,15 * 1', 7 * DAY],
    // A stepped wildcard restricts: odd days and any weekday, 27 February to 1 March.
    ['0 0 */2 * *', 2 * DAY],
    // ... so with a weekday too, either field matches: odd days or Mondays.
    ['0 0 */2 * 1', 2 * DAY],
    // 29 February 2096 to 29 February 2104: 2100 is no leap year.
    ['0 0 29 2 *', 2921 * DAY],
  ])('%s: %d s', (cron, seconds) => {
    expect(cronMaxIntervalSeconds(cron)).toBe(seconds);
  });

  test('a schedule that never runs has no interval', () => {
    expect(cronMaxIntervalSeconds('0 0 30 2 *')).toBeUndefined();
    expect(cronMaxIntervalSeconds('0 0 31 4,6 *')).toBeUndefined();
  });
});
