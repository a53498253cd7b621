// Registers every brick-side translator type with the volfile registry.
import './storage/posix.js';
import './features/locks.js';
import './protocol/server.js';
