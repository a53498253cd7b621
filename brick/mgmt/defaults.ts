/** Where a daemon keeps its state unless told (`brickfs daemon --state`). */
export const DEFAULT_STATE_DIR = '/var/lib/brickfs';
/** The first TCP port a daemon gives new bricks unless told (`brickfs daemon --brick-port-base`). */
export const DEFAULT_BRICK_PORT_BASE = 7100;
