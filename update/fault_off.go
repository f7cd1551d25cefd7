//go:build !efm_fault_unhealthy

package update

// faultUnhealthy is false in every normal build; see fault_unhealthy.go.
const faultUnhealthy = false
