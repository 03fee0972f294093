"""The pure layer under every other package: what a message is, how it is composed, and the
names of its states. Nothing here does I/O (no database, no network, no clock), so any
package may import it and its functions are tested on values alone."""
