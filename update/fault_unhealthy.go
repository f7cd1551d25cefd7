//go:build efm_fault_unhealthy

package update

// faultUnhealthy makes a binary built with the efm_fault_unhealthy tag never
// pass probation: the end-to-end test builds its failing "version 3" this
// way, so the real probation, rollback and blocklist run against a real
// daemon. Release builds never set the tag.
const faultUnhealthy = true
