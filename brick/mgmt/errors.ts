/** A request the management daemon refuses; status is the HTTP status of the error reply. */
export class MgmtError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'MgmtError';
  }
}

/** The reply for a volume name that is not defined. */
export function noSuchVolume(name: string): MgmtError {
  return new MgmtError(404, `volume ${name} does not exist; \`brickfs volume info\` lists volumes`);
}
