/** Who is making a request, once authenticated. */
export type Role = "admin" | "operator";

export type Actor =
  | { kind: "admin-key"; role: "admin"; userId: null; tokenId: null }
  | { kind: "token"; role: Role; userId: number | null; tokenId: number }
  | { kind: "session"; role: Role; userId: number; tokenId: null };

export const adminKeyActor: Actor = { kind: "admin-key", role: "admin", userId: null, tokenId: null };
