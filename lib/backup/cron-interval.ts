/**
 * The longest time between two runs of a five-field cron schedule, as Kubernetes' CronJob
 * controller (robfig/cron's standard parser) runs it. Assumes a schedule validateCron accepted.
 */

const DAY_MINUTES = 24 * 60;
/** The Gregorian calendar repeats its days of the week and leap years every 400 years. */
const CYCLE_DAYS = 146097;
const FIELDS = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'], first: 1 },
  { min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], first: 0 },
];

const monthLength = (year: number, month: number) => (month === 2
  ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28)
  : [4, 6, 9, 11].includes(month) ? 30 : 31);

interface FieldValues {
  readonly values: Set<number>;
  /** `*` or `?` without a step: robfig/cron then requires both day fields to match, else either. */
  readonly any: boolean;
}

function expand(field: string, position: number): FieldValues {
  const spec = FIELDS[position];
  const value = (text: string) => {
    const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
    return named >= 0 ? named + (spec.first ?? 0) : Number(text);
  };
  const values = new Set<number>();
  let any = false;
  for (const item of field.split(',')) {
    const [range, stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [from, to] = range.split('-');
    const wildcard = range === '*' || range === '?';
    if (wildcard && step === 1) any = true;
    const low = wildcard ? spec.min : value(from);
    // "N/step" means N through the maximum.
    const high = wildcard || (to === undefined && stepText !== undefined) ? spec.max : value(to ?? from);
    // Sunday is 0 or 7.
    for (let v = low; v <= high; v += step) values.add(position === 4 && v === 7 ? 0 : v);
  }
  return { values, any };
}

/**
 * The longest gap between consecutive runs of `cron`, in seconds, over the 400-year cycle of the
 * calendar (so a February 29 schedule counts its 8-year gap across 2100); undefined when the
 * schedule never runs, such as on February 30.
 */
export function cronMaxIntervalSeconds(cron: string): number | undefined {
  const [minutes, hours, days, months, weekdays] = cron.trim().split(/\s+/).map(expand);
  const times = [...hours.values].flatMap((hour) => [...minutes.values].map((minute) => hour * 60 + minute)).sort((a, b) => a - b);
  const runDays: number[] = [];
  // 2000-01-01 was a Saturday.
  for (let year = 2000, day = 0, weekday = 6; year < 2400; year++) {
    for (let month = 1; month <= 12; month++) {
      for (let date = 1; date <= monthLength(year, month); date++, day++, weekday = (weekday + 1) % 7) {
        if (!months.values.has(month)) continue;
        const dayOfMonth = days.values.has(date);
        const dayOfWeek = weekdays.values.has(weekday);
        if (days.any || weekdays.any ? dayOfMonth && dayOfWeek : dayOfMonth || dayOfWeek) runDays.push(day);
      }
    }
  }
  if (runDays.length === 0) return undefined;
  const first = times[0];
  const last = times[times.length - 1];
  let longest = times.slice(1).reduce((gap, time, index) => Math.max(gap, time - times[index]), 0);
  runDays.forEach((day, index) => {
    const next = index + 1 < runDays.length ? runDays[index + 1] : runDays[0] + CYCLE_DAYS;
    longest = Math.max(longest, (next - day) * DAY_MINUTES + first - last);
  });
  return longest * 60;
}
