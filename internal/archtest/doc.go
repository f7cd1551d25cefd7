// Package archtest holds the test that keeps the import direction of
// DESIGN.md true. It has no code of its own.
package archtest
