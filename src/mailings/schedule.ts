/**
 * Moved to src/time/ (below both mailings and dispatch). This re-export remains only for modules
 * owned by parallel work that still import it (clients/import.ts); delete it once nothing does.
 */
export * from "../time/send-window";
export * from "../time/wall-time";
export * from "../time/zone-plan";
