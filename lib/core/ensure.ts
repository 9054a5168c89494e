/** Whether a declared object should exist: the primary creates it, or drops it when it safely can. */
export enum Ensure {
  /** Created when missing. */
  PRESENT = 'present',
  /** Dropped when present and nothing depends on it; otherwise left, and the refusal logged. */
  ABSENT = 'absent',
}
