/**
 * The service's mail client, a stand-in: it logs the message instead of sending it. A real one
 * would call SES or an SMTP relay and throw {@link MailerUnavailableError} when that is down.
 */

/** The mail service did not answer: worth trying again later. */
export class MailerUnavailableError extends Error {
  override readonly name = 'MailerUnavailableError';
}

/** The address was refused: trying again will not help. */
export class InvalidRecipientError extends Error {
  override readonly name = 'InvalidRecipientError';
}

/** Sends one mail; resolves with the provider's message id. */
export async function sendMail(to: string, subject: string): Promise<string> {
  if (to.endsWith('.invalid')) throw new InvalidRecipientError(`${to} does not receive mail`);
  console.log(`mail to ${to}: ${subject}`);
  return `mail-${Date.now().toString(36)}`;
}
