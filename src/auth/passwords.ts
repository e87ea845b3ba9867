/** Password hashing with Bun.password (argon2id, SPEC §9). */

export const minPasswordLength = 10;
export const maxPasswordLength = 256;

export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, { algorithm: "argon2id" });
}

export async function verifyPassword(password: string, hash: string | null): Promise<boolean> {
  // A user without a password (an OAuth identity) never signs in with one; still spend the time
  // of a verification so that the answer does not tell which e-mails exist.
  if (!hash) {
    await Bun.password.verify(password, dummyHash ??= await hashPassword("not-a-real-password"));
    return false;
  }
  try {
    return await Bun.password.verify(password, hash);
  } catch {
    return false;
  }
}

let dummyHash: string | undefined;

/** Spends about the time of a verification (unknown e-mail), for uniform timing. */
export async function verifyNothing(password: string): Promise<void> {
  await verifyPassword(password, null);
}
