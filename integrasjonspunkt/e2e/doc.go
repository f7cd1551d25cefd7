// Package e2e holds the end-to-end tests of the daemon: real daemons (in
// process, or as child processes of the built binary) against the sandbox's
// simulators over real HTTP, driven through the local API as a client system
// would drive them. It has no code of its own.
package e2e
